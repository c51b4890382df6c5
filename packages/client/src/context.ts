/**
 * What the engine's loops (push, pull, rescan) share: the database, the
 * capture runtime, the provider and the event bus.
 */
import type { Dexie } from 'dexie';
import type { BackoffOptions } from './backoff.js';
import type { CaptureRuntime } from './capture/index.js';
import type { SyncEventBus } from './events.js';
import type { SyncProvider, SyncScope } from './provider.js';

/** Tunables of the loops, resolved from the engine's options. */
export interface LoopSettings {
  pushBatchSize: number;
  /** A backlog (a batch taken full) goes in the server's largest batches: true unless the app chose `pushBatchSize`. */
  backlogBatches: boolean;
  pullLimit: number;
  backoff: BackoffOptions;
  /** Below this `RateLimit-Remaining`, the push loop waits `rateLimitDelayMs` between batches. */
  rateLimitLowWater: number;
  rateLimitDelayMs: number;
  /** Rows per adoption batch (one transaction each, and the unit of resuming). */
  adoptBatchSize: number;
}

export interface EngineContext {
  db: Dexie;
  runtime: CaptureRuntime;
  provider: SyncProvider;
  /** Always carries `deviceId`. */
  scope: SyncScope & { deviceId: string };
  /** `_or3sync_state` key of this scope's cursor. */
  cursorKey: string;
  events: SyncEventBus;
  settings: LoopSettings;
  /** Feeds a `server_time` sample into the clock offset. */
  observeServerTime(serverTime: number): void;
  /** Re-counts the outbox into `runtime.pendingEstimate` (`queued`: a count the caller just read). */
  refreshPendingEstimate(queued?: number): Promise<void>;
}
