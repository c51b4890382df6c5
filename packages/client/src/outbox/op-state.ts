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
 * and leaves it sent. An op whose author is not the user the database belongs
 * to now is `held` (PROTOCOL.md section 6, "Users"): never pushed, never
 * coalesced, not counted, until its author opens the database again and it
 * is released to where it was (a failed one is tried again).
 */
import type { AppliedResult, DuplicateResult, OpRejection, OpResult, SupersededResult } from '@or3/sync-protocol';

/** Where an op stands. */
export type OpState =
  /** Captured and never part of a push request: a later write of its record may coalesce into it. */
  | { kind: 'pending' }
  /** Part of a push request at least once: waits for an answer; never coalesced (the server may hold it). */
  | { kind: 'sent' }
  /** Rejected for good: kept, never pushed again, until the app discards it. */
  | { kind: 'failed'; reason: OpRejection }
  /** Kept for its author while another user owns the database (or after she signed out keeping it). */
  | { kind: 'held'; reason: HeldReason; sent: boolean };

/** Why an op is held: another user opened the database, or its author signed out keeping it (`unsynced: 'hold'`). */
export type HeldReason = 'other_user' | 'signed_out';

/** The storage encoding of an op's state (the columns every release wrote). */
export interface StoredOpState {
  /** `pending` covers both never-sent and sent ops; `failed` ops are skipped until discarded; `held` ops wait for their author. */
  status: 'pending' | 'failed' | 'held';
  /** 1 once the op was ever part of a push request. */
  sent: 0 | 1;
  error: OpRejection | null;
  /** Why a held op is held (absent otherwise). */
  held_reason?: HeldReason;
}

/** Stored `status` values, for the outbox's index queries. */
export const STORED_STATUS = { pending: 'pending', failed: 'failed', held: 'held' } as const;

/** The state a stored row encodes. A row without `sent` (an older layout) counts as sent: it never coalesces. */
export function opState(row: StoredOpState): OpState {
  if (row.status === STORED_STATUS.failed) {
    return { kind: 'failed', reason: row.error ?? { code: 'unknown', message: 'rejected', retryable: false } };
  }
  if (row.status === STORED_STATUS.held) return { kind: 'held', reason: row.held_reason ?? 'other_user', sent: row.sent !== 0 };
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
    case 'held':
      return { status: STORED_STATUS.held, sent: state.sent ? 1 : 0, error: null, held_reason: state.reason };
  }
}

/** Holding an op for its author: it keeps whether it was ever sent (a failed one was). */
export function holdOp(state: OpState, reason: HeldReason): OpState {
  if (state.kind === 'held') return { ...state, reason };
  return { kind: 'held', reason, sent: state.kind !== 'pending' };
}

/** Its author is back: a held op waits to be pushed again (a once-failed one is tried again). */
export function releaseOp(state: OpState): OpState {
  if (state.kind !== 'held') return state;
  return state.sent ? { kind: 'sent' } : { kind: 'pending' };
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
