/**
 * What capture shares with its engine (`CaptureRuntime`), and the error a
 * write that cannot be captured fails with.
 */
import type { ClockState } from '../clock-state.js';
import type { SyncedTable } from '../schema.js';

/** What the middleware shares with its engine. */
export interface CaptureRuntime {
  tables: Map<string, SyncedTable>;
  /** Set by the engine once the database is open; writes before that throw. */
  deviceId: string | null;
  /** The engine's wall clock in ms (`options.now`), for local times: capture, tombstone retention, leases. */
  now(): number;
  /** Wall time in ms corrected by the server offset, for HLC stamps. */
  hlcNow(): number;
  /** Wall time in the app's unit, for `updated_at`, `created_at`, `deleted_at`. */
  appNow(): number;
  /** Above this many pending ops, never-sent ops on one record coalesce. */
  outboxSoftLimit: number;
  /** Estimate of the outbox size, kept by the engine. */
  pendingEstimate: number;
  /** IndexedDB transactions that apply server changes: never captured. */
  remoteTransactions: WeakSet<object>;
  /**
   * The clock state this tab last wrote (capture or remote apply): capture's
   * guess of what a transaction will read. A wrong guess costs a rewrite, never correctness.
   */
  lastClockState: ClockState | null;
  /** Called after a transaction that captured ops committed: ops added, ops merged into earlier ones. */
  onCaptured(added: number, coalesced: number): void;
}

/** Error for a write the engine cannot capture. */
export class CaptureError extends Error {
  constructor(message: string) {
    super(`or3-sync capture: ${message}`);
    this.name = 'CaptureError';
  }
}
