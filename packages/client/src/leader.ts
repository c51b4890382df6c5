/**
 * Multi-tab coordination: one tab per workspace runs the network loops (the
 * holder of a Web Lock), and every tab tells the others when it captured
 * writes (BroadcastChannel), so the leader pushes them promptly.
 */

/** The part of `navigator.locks` the engine uses. */
export interface LockManagerLike {
  request(name: string, options: { mode: 'exclusive'; signal?: AbortSignal }, callback: () => Promise<void>): Promise<unknown>;
}

/** The Web Locks API when the platform has it. */
export function defaultLockManager(): LockManagerLike | null {
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  return nav?.locks ?? null;
}

/**
 * Calls `onLeader` once this tab holds the lock `name` (at once without a lock
 * manager: every tab leads, which is safe since pushes are idempotent).
 * Returns a function that gives leadership up or stops waiting for it.
 */
export function electLeader(locks: LockManagerLike | null, name: string, onLeader: () => void): () => void {
  if (!locks) {
    onLeader();
    return () => {};
  }
  const controller = new AbortController();
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  locks
    .request(name, { mode: 'exclusive', signal: controller.signal }, async () => {
      onLeader();
      await held;
    })
    .catch(() => {
      // Aborted while waiting: this tab closed before it led.
    });
  return () => {
    controller.abort();
    release();
  };
}

/** A channel between the tabs of one device and workspace. */
export interface TabChannel {
  /** Tells the other tabs that this one captured writes; does nothing once closed. */
  notifyCaptured(): void;
  /** Tells the other tabs that `userId` opened the database (and so owns its data now); does nothing once closed. */
  announceOwner(userId: string): void;
  /** Closes the channel; safe to call twice. */
  close(): void;
}

/** What a tab hears from the others. */
export interface TabChannelHandlers {
  /** Another tab captured writes. */
  captured(): void;
  /** `userId` opened the database in another tab (its data is the only data there now). */
  owner(userId: string): void;
}

/** Opens a BroadcastChannel when the platform has one; otherwise a no-op channel. */
export function openTabChannel(name: string, handlers: TabChannelHandlers): TabChannel {
  const Channel = (globalThis as { BroadcastChannel?: typeof BroadcastChannel }).BroadcastChannel;
  if (!Channel) return { notifyCaptured() {}, announceOwner() {}, close() {} };
  let channel: BroadcastChannel | null = new Channel(name);
  channel.onmessage = (event: MessageEvent) => {
    const message = event.data as { type?: string; userId?: unknown } | null;
    if (message?.type === 'captured') handlers.captured();
    else if (message?.type === 'owner' && typeof message.userId === 'string') handlers.owner(message.userId);
  };
  return {
    // A write can commit after close() (a put the app did not await): there is nobody left to tell,
    // and posting to a closed channel would throw an uncaught error in the page.
    notifyCaptured: () => channel?.postMessage({ type: 'captured' }),
    announceOwner: (userId) => channel?.postMessage({ type: 'owner', userId }),
    close: () => {
      channel?.close();
      channel = null;
    },
  };
}
