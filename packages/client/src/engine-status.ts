/**
 * The engine's side of the status machine (`sync-status.ts`): what it knows
 * of its realtime channel, its latest run and error, and its held and failed
 * ops, summed up by `syncStateOf` into `engine.status`, and announced as
 * `sync.status:action` whenever the summary changes.
 */
import type { Dexie } from 'dexie';
import type { ErrorEvent, PauseReason, WorkspaceAccess } from './events.js';
import { isConfigMismatch, opState, outbox, type PendingOpRow } from './outbox/index.js';
import type { SyncProvider } from './provider.js';
import { syncStateOf, type ChannelState, type SyncState } from './sync-status.js';

/** `engine.status` and `sync.status:action`. */
export interface EngineStatus {
  state: SyncState;
  /** Ops waiting to be pushed. */
  pending: number;
  /** Ops held back (a configuration mismatch, or another user's write). */
  held: number;
  /** Ops rejected for good, until the app retries, discards or restores them. */
  failed: number;
  /** The latest `sync.error:action` (or the reason of a failed or held op), until a run syncs with nothing failed or held. */
  lastError: ErrorEvent | null;
  channel: ChannelState;
  lastPullAt: number | null;
}

/** What the tracker reads from its engine when it sums up. */
export interface StatusSource {
  db: Dexie;
  pause(): PauseReason | null;
  /** What the server lets the user do (`engine.access`). */
  access(): WorkspaceAccess;
  pending(): number;
  lastPullAt(): number | null;
  now(): number;
  freshMs: number;
  emit(status: EngineStatus): void;
}

/** How the channel changed. */
export type ChannelChange = 'connected' | 'reconnected' | 'dropped' | null;

export class StatusTracker {
  private channel: ChannelState = null;
  private channelDownAt: number | null = null;
  private lastRunError: string | null | undefined = undefined;
  private lastError: ErrorEvent | null = null;
  private held = 0;
  private failed = 0;
  private announced = '';

  constructor(private readonly source: StatusSource) {}

  get status(): EngineStatus {
    const { source } = this;
    const pause = source.pause();
    const lastPullAt = source.lastPullAt();
    const state = syncStateOf({
      online: typeof navigator === 'undefined' || navigator.onLine !== false,
      pause: pause === null ? null : pause.kind === 'app' ? 'app' : 'refused',
      access: source.access(),
      pending: source.pending(),
      held: this.held,
      failed: this.failed,
      lastRunError: this.lastRunError,
      channel: this.channel,
      channelDownAt: this.channelDownAt,
      lastPullAt,
      now: source.now(),
      freshMs: source.freshMs,
    });
    return { state, pending: source.pending(), held: this.held, failed: this.failed, lastError: this.lastError, channel: this.channel, lastPullAt };
  }

  /** Announces the status when its summary changed. */
  announce(): void {
    const status = this.status;
    const key = `${status.state}|${status.pending}|${status.held}|${status.failed}|${status.lastError?.message ?? ''}|${status.channel}`;
    if (key === this.announced) return;
    this.announced = key;
    this.source.emit(status);
  }

  noteError(event: ErrorEvent): void {
    this.lastError = event;
    this.announce();
  }

  /** A run ended with `error` (null: synced): re-count held and failed ops. */
  async noteRun(error: string | null): Promise<void> {
    this.lastRunError = error;
    await this.recount();
  }

  /** Re-counts held and failed ops; the error of the first of them stands in for a `lastError` this engine did not see. */
  async recount(): Promise<void> {
    const { db } = this.source;
    if (!db.isOpen()) return;
    const [held, failed] = await Promise.all([outbox.heldForServer(db), outbox.countFailed(db)]);
    [this.held, this.failed] = [held.length, failed];
    if (this.failed + this.held === 0) {
      if (this.lastRunError === null) this.lastError = null;
    } else if (this.lastError === null) {
      const [op] = this.failed > 0 ? await outbox.failedOps(db) : held;
      if (op) this.lastError = opError(op);
    }
    this.announce();
  }

  /** The realtime channel connected (or not); says how it changed. */
  private setChannel(connected: boolean): ChannelChange {
    const before = this.channel;
    if (connected) {
      this.channel = 'up';
      this.channelDownAt = null;
    } else if (before !== 'down') {
      // A session that ended, or one that never connected: the server may be out of reach.
      this.channel = 'down';
      this.channelDownAt = this.source.now();
    }
    this.announce();
    if (connected) return before === 'down' ? 'reconnected' : before === null ? 'connected' : null;
    return before !== 'down' ? 'dropped' : null;
  }

  /**
   * Follows the provider's realtime state of `workspaceId` (a drop shows at once as `offline`; the
   * provider resumes by itself); calls `onReconnected` when the channel comes back while ops are held.
   */
  follow(provider: SyncProvider, workspaceId: string, onReconnected: () => void): () => void {
    const stop = provider.onRealtimeState?.((state) => {
      if (state.workspaceId !== workspaceId) return;
      if (this.setChannel(state.connected) === 'reconnected' && this.held > 0) onReconnected();
    });
    return stop ?? (() => {});
  }

  /** The subscription stopped: no channel. */
  closeChannel(): void {
    this.channel = null;
    this.channelDownAt = null;
    this.announce();
  }
}

/** The event a failed op's rejection, or a config-held op's reason, would have fired (null for another hold: not an error). */
function opError(op: PendingOpRow): ErrorEvent | null {
  const state = opState(op);
  if (state.kind === 'failed') return { phase: 'push', code: state.reason.code, message: state.reason.message, opId: op.op_id, tableName: op.table_name, pk: op.pk };
  if (state.kind !== 'held') return null;
  const { code, message } = state.reason;
  return isConfigMismatch(code) ? { phase: 'push', code, message, opId: op.op_id, tableName: op.table_name, pk: op.pk, held: true } : null;
}
