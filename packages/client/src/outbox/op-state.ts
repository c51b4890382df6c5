/**
 * An outbox op's state as one typed value, and the pure transitions between
 * states. Stored rows keep the columns the first releases wrote (`status`,
 * `sent`, `error`); `opState` reads them and `stateColumns` writes them, and
 * nothing else in the engine looks at those columns.
 *
 *   pending --(taken into a push)--> sent --(answered)--> left the outbox
 *      |                               |                  (applied, duplicate, superseded)
 *      +-------(rejected for good)-----+--> failed --(the app discards it)--> left the outbox
 *
 * A rejection the server marks retryable (`clock_skew`) re-stamps a sent op
 * and leaves it sent.
 */
import type { AppliedResult, DuplicateResult, OpRejection, OpResult, SupersededResult } from '@or3/sync-protocol';

/** Where an op stands. */
export type OpState =
  /** Captured and never part of a push request: a later write of its record may coalesce into it. */
  | { kind: 'pending' }
  /** Part of a push request at least once: waits for an answer; never coalesced (the server may hold it). */
  | { kind: 'sent' }
  /** Rejected for good: kept, never pushed again, until the app discards it. */
  | { kind: 'failed'; reason: OpRejection };

/** The storage encoding of an op's state (the columns every release wrote). */
export interface StoredOpState {
  /** `pending` covers both never-sent and sent ops; `failed` ops are skipped until discarded. */
  status: 'pending' | 'failed';
  /** 1 once the op was ever part of a push request. */
  sent: 0 | 1;
  error: OpRejection | null;
}

/** Stored `status` values, for the outbox's index queries. */
export const STORED_STATUS = { pending: 'pending', failed: 'failed' } as const;

/** The state a stored row encodes. A row without `sent` (an older layout) counts as sent: it never coalesces. */
export function opState(row: StoredOpState): OpState {
  if (row.status === STORED_STATUS.failed) {
    return { kind: 'failed', reason: row.error ?? { code: 'unknown', message: 'rejected', retryable: false } };
  }
  return row.sent === 0 ? { kind: 'pending' } : { kind: 'sent' };
}

/** The columns that store `state`. */
export function stateColumns(state: OpState): StoredOpState {
  switch (state.kind) {
    case 'pending':
      return { status: STORED_STATUS.pending, sent: 0, error: null };
    case 'sent':
      return { status: STORED_STATUS.pending, sent: 1, error: null };
    case 'failed':
      return { status: STORED_STATUS.failed, sent: 1, error: state.reason };
  }
}

/** The state of a newly captured (or adopted) op. */
export const CAPTURED: OpState = { kind: 'pending' };

/** Taking an op into a push request: a pending op is sent from now on; a sent one stays sent. */
export function sendOp(state: OpState): OpState {
  return state.kind === 'pending' ? { kind: 'sent' } : state;
}

/** A rejection for good (by the server, or before sending: an oversized payload). */
export function failOp(reason: OpRejection): OpState {
  return { kind: 'failed', reason };
}

/**
 * The coalescing rule: a new write of a record replaces the record's latest op
 * only while that op was never sent (the server may already hold a sent one,
 * and a failed one is the app's to discard).
 */
export function takesLaterWrite(latest: OpState): boolean {
  return latest.kind === 'pending';
}

/** True while the op waits to be pushed (never sent, or sent and not answered). */
export function isQueued(state: OpState): boolean {
  return state.kind === 'pending' || state.kind === 'sent';
}

/** What the server's answer to one sent op does to it. */
export type PushVerdict =
  /** The server has the op or a later write: it leaves the outbox. */
  | { kind: 'settle'; result: AppliedResult | DuplicateResult | SupersededResult }
  /** Rejected for clock skew: re-stamped from corrected time and pushed again. */
  | { kind: 'restamp' }
  /** Rejected for good. */
  | { kind: 'fail'; reason: OpRejection };

/** Classifies the server's answer to one op. */
export function judgeResult(result: OpResult): PushVerdict {
  switch (result.status) {
    case 'applied':
    case 'duplicate':
    case 'superseded':
      return { kind: 'settle', result };
    case 'rejected':
      return result.error.retryable ? { kind: 'restamp' } : { kind: 'fail', reason: result.error };
  }
}
