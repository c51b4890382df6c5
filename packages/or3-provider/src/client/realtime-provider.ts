/**
 * OR3's browser `SyncProvider` (mode `gateway`) for or3-sync: push, pull,
 * snapshot and the cursor go through OR3's own `/api/sync/*` routes exactly
 * as OR3's polling gateway provider sends them; `subscribe` pulls when the
 * gateway's WebSocket announces a commit, instead of every 2 s. A slow
 * fallback poll covers a socket that cannot open.
 */
import type { PullRequest, PullResponse, PushBatch, PushResult, SnapshotRequest, SnapshotResponse, SyncProvider, SyncScope } from '../or3-types.js';
import { or3Routes, type Or3RoutesOptions } from './or3-routes.js';
import { keepWakeSocket, type RealtimeToken, type WebSocketFactory } from './wake-socket.js';

export interface Or3SyncRealtimeProviderOptions extends Or3RoutesOptions {
  /** The provider id; OR3 activates the one equal to its configured `sync.provider` (`or3sync`). */
  id?: string;
  /** Opens the WebSocket; the browser's `WebSocket` by default. */
  openSocket?: WebSocketFactory;
  /** The safety-net poll while subscribed (default 30 s). */
  fallbackPollMs?: number;
  /** Changes per pull (default 500; OR3 allows at most 1000). */
  pullLimit?: number;
  /** The module's token route (default `/api/or3sync/realtime-token`). */
  tokenPath?: string;
}

const browserSocket: WebSocketFactory = (url, protocols) => new WebSocket(url, protocols) as unknown as ReturnType<WebSocketFactory>;

export function createOr3SyncRealtimeProvider(options: Or3SyncRealtimeProviderOptions = {}): SyncProvider {
  const call = or3Routes(options);
  const pullLimit = Math.min(1000, options.pullLimit ?? 500);
  const fallbackPollMs = options.fallbackPollMs ?? 30_000;
  const subscriptions = new Set<() => void>();
  const pull = (request: PullRequest) => call<PullResponse>('POST', '/api/sync/pull', request);

  return {
    id: options.id ?? 'or3sync',
    mode: 'gateway',
    capabilities: { snapshotBootstrap: 'snapshot-v1', historyRetention: 'snapshot-v1' },
    pull,
    snapshot: (request: SnapshotRequest) => call<SnapshotResponse>('POST', '/api/sync/snapshot', request),
    push: (batch: PushBatch) => call<PushResult>('POST', '/api/sync/push', batch),
    async updateCursor(scope: SyncScope, deviceId: string, version: number) {
      await call('POST', '/api/sync/update-cursor', { scope, deviceId, version });
    },
    async gcTombstones(scope: SyncScope, retentionSeconds: number) {
      await call('POST', '/api/sync/gc-tombstones', { scope, retentionSeconds });
    },
    async gcChangeLog(scope: SyncScope, retentionSeconds: number) {
      await call('POST', '/api/sync/gc-change-log', { scope, retentionSeconds });
    },

    async subscribe(scope, tables, onChanges, subscribeOptions) {
      let cursor = subscribeOptions?.cursor ?? 0;
      const limit = Math.min(pullLimit, subscribeOptions?.limit ?? pullLimit);
      let active = true;
      let running = false;
      let again = false;
      let rearmOwed = false;
      let poll: ReturnType<typeof setTimeout> | undefined;

      // One pull run at a time; a wake-up during a run asks for one more.
      const run = async (): Promise<void> => {
        if (!active) return;
        if (running) {
          again = true;
          return;
        }
        running = true;
        try {
          for (let more = true; more && active; ) {
            const page = await pull({ scope, cursor, limit, tables });
            // A gap only a snapshot closes: OR3's engine recovers on its own pull.
            if (page.requiresSnapshot) break;
            if (page.changes.length > 0) await onChanges(page.changes);
            more = page.hasMore && page.nextCursor > cursor;
            cursor = Math.max(cursor, page.nextCursor);
          }
          if (rearmOwed) {
            rearmOwed = false;
            socket.rearm();
          }
        } catch (error) {
          console.warn('[or3sync] pull after a wake-up failed; the next wake-up or poll retries', error);
        } finally {
          running = false;
        }
        if (again) {
          again = false;
          return run();
        }
      };
      const schedulePoll = () => {
        poll = setTimeout(() => void run().finally(() => active && schedulePoll()), fallbackPollMs);
      };

      const socket = keepWakeSocket({
        scope,
        cursor: () => cursor,
        token: () => call<RealtimeToken>('GET', options.tokenPath ?? '/api/or3sync/realtime-token'),
        openSocket: options.openSocket ?? browserSocket,
        onWake(frame) {
          if (frame === 'poke') rearmOwed = true;
          void run();
        },
      });
      schedulePoll();

      const stop = () => {
        active = false;
        clearTimeout(poll);
        socket.stop();
      };
      subscriptions.add(stop);
      return () => {
        stop();
        subscriptions.delete(stop);
      };
    },

    async dispose() {
      for (const stop of subscriptions) stop();
      subscriptions.clear();
    },
  };
}
