/**
 * How a run ends, as typed values from pure functions (in the style of
 * `gateway/session-end.ts`): what a failure means (`classifyFailure`), whether
 * a failed push still lets the run pull, and whether the scheduler retries.
 * Nothing else in the engine looks at HTTP statuses to decide.
 */
import type { SyncErrorCode } from '@or3/sync-protocol';
import type { SyncPhase } from './events.js';
import { OwnerChangedError, UserMismatchError } from './people/ownership.js';
import { isSyncProviderError } from './provider.js';

/** A failure of the engine's own making, not a backend's answer: backed off and retried. */
export class EngineRunError extends Error {
  constructor(
    /** `clock_skew`: re-stamping did not help; `rescan_busy`: another tab holds the rescan lease. */
    readonly code: 'clock_skew' | 'rescan_busy',
    message: string,
  ) {
    super(message);
    this.name = 'EngineRunError';
  }
}

/** What a failure means for the engine. */
export type Failure =
  /** The server refused this device the workspace (403, 404), the token is another user's, or another user opened the database since: the engine pauses until `resume()`. */
  | { kind: 'refused'; code: SyncErrorCode; message: string }
  /** The backend did not answer (network, offline): nothing else this run would reach it either. Back off. */
  | { kind: 'unreachable'; code: SyncErrorCode; message: string; retryAfterMs: null }
  /** Anything else (a 5xx, 429, clock skew, a busy rescan, a bug): back off and retry. */
  | { kind: 'retry'; code: SyncErrorCode; message: string; retryAfterMs: number | null };

/** What a thrown error means: the one place a provider's status is read. */
export function classifyFailure(error: unknown): Failure {
  if (error instanceof EngineRunError) return { kind: 'retry', code: error.code, message: error.message, retryAfterMs: null };
  if (error instanceof UserMismatchError || error instanceof OwnerChangedError) return { kind: 'refused', code: error.code, message: error.message };
  if (!isSyncProviderError(error)) {
    return { kind: 'retry', code: 'internal', message: String((error as Error)?.message ?? error), retryAfterMs: null };
  }
  const { code, message } = error;
  if (error.status === 403 || error.status === 404) return { kind: 'refused', code, message };
  if (error.status === 0) return { kind: 'unreachable', code, message, retryAfterMs: null };
  return { kind: 'retry', code, message, retryAfterMs: error.retryAfterMs };
}

/**
 * Whether a run goes on to pull after its push failed: yes, unless the server
 * refused the workspace or could not be reached (the failure still fails the run).
 * A clock-skew give-up pulls: the changes of others do not depend on this device's clock.
 */
export function pullsAfterPushFailure(failure: Failure): boolean {
  return failure.kind === 'retry';
}

/** How a run ended. */
export type RunEnd =
  | { kind: 'synced' }
  /** The engine was paused: the run did nothing. */
  | { kind: 'paused' }
  | { kind: 'failed'; phase: SyncPhase; failure: Failure };

/** The run's end, given what it threw (null: nothing) and the step it was in. */
export function endOfRun(thrown: { error: unknown; phase: SyncPhase } | null): RunEnd {
  return thrown === null ? { kind: 'synced' } : { kind: 'failed', phase: thrown.phase, failure: classifyFailure(thrown.error) };
}

/** The code a run's result and `_or3sync_runs` row carry: null for a run that synced. */
export function runErrorCode(end: RunEnd): string | null {
  switch (end.kind) {
    case 'synced':
      return null;
    case 'paused':
      return 'paused';
    case 'failed':
      return end.failure.code;
  }
}

/** True when the scheduler retries after the backoff (a refusal pauses instead; a paused run waits for `resume()`). */
export function retriesAfter(end: RunEnd): boolean {
  return end.kind === 'failed' && end.failure.kind !== 'refused';
}
