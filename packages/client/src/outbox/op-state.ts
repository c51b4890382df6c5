/**
 * An outbox op's state as one typed value, and the pure transitions between
 * states. Stored rows keep the columns the first releases wrote (`status`,
 * `sent`, `error`); `opState` reads them and `stateColumns` writes them, and
 * nothing else in the engine looks at those columns.
 *
 *   pending --(taken into a push)--> sent --(answered)--> left the outbox
 *      |                               |                  (applied, duplicate, superseded)
 *      +-------(rejected for good)-----+--> failed --(the app discards it)--> left the outbox
 *      ^                                         |
 *      +------------(the app retries it)---------+
 *
 * A rejection the server marks retryable (`clock_skew`) re-stamps a sent op
 * and leaves it sent.
 *
 * A *held* op is kept back with its reason (a configuration mismatch between
 * two deployments: the server answered `unknown_table` or `pk_mismatch`, which
 * `judgeResult` holds; or an op whose author is not the signed-in user): never
 * pushed and never coalesced until a transition releases it, to the state it
 * had before (`releaseOp`). `countQueued` and `takeBatch` (`queries.ts`) read
 * only `pending` rows, so a held op is neither counted as waiting nor sent.
 * Who owns an op is a column of `PendingOpRow`, not a state.
 */
import type { AppliedResult, DuplicateResult, OpRejection, OpResult, RejectionCode, SupersededResult } from '@or3/sync-protocol';

/**
 * Why an op failed for good: the server's per-op rejection, or `read_only`
 * (the server refused the user's writes while her reads go on).
 */
export type OpFailure = Omit<OpRejection, 'code'> & { code: RejectionCode | 'read_only' };

/** Where an op stands. */
export type OpState =
  /** Captured and never part of a push request: a later write of its record may coalesce into it. */
  | { kind: 'pending' }
  /** Part of a push request at least once (or adopted, `ADOPTED`): waits for an answer; never coalesced (the server may hold it). */
  | { kind: 'sent' }
  /** Rejected for good: kept, never pushed again, until the app discards it. */
  | { kind: 'failed'; reason: OpFailure }
  /** Kept back for `reason`, never pushed, until released; `wasSent` says what it returns to. */
  | { kind: 'held'; reason: HoldReason; wasSent: boolean };

/** Why an op is held back: nothing about the write itself is wrong. */
export interface HoldReason {
  /**
   * `unknown_table`/`pk_mismatch`: the server does not (yet) sync the op's table as declared;
   * `other_user`: its author is not the user the database belongs to now; `signed_out`: its
   * author signed out keeping it for her next sign-in (PROTOCOL.md section 6, "Users").
   */
  code: 'unknown_table' | 'pk_mismatch' | AuthorHold;
  message: string;
}

/** Holds that wait for the op's author to open the database again. */
export type AuthorHold = 'other_user' | 'signed_out';

/** The storage encoding of an op's state (the columns every release wrote). */
export interface StoredOpState {
  /** `pending` covers both never-sent and sent ops; `failed` ops are skipped until discarded, `held` ones until released. */
  status: 'pending' | 'failed' | 'held';
  /** 1 once the op was ever part of a push request. */
  sent: 0 | 1;
  /** The rejection of a failed op, or the reason of a held one. */
  error: OpFailure | HoldReason | null;
}

/** Stored `status` values, for the outbox's index queries. */
export const STORED_STATUS = { pending: 'pending', failed: 'failed', held: 'held' } as const;

/** The state a stored row encodes. A row without `sent` (an older layout) counts as sent: it never coalesces. */
export function opState(row: StoredOpState): OpState {
  if (row.status === STORED_STATUS.failed) {
    const reason = row.error as OpFailure | null;
    return { kind: 'failed', reason: reason ?? { code: 'invalid_op', message: 'rejected (no reason was stored)', retryable: false } };
  }
  if (row.status === STORED_STATUS.held) {
    const reason = (row.error as HoldReason | null) ?? { code: 'other_user', message: 'held' };
    return { kind: 'held', reason, wasSent: row.sent !== 0 };
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
    case 'held':
      return { status: STORED_STATUS.held, sent: state.wasSent ? 1 : 0, error: state.reason };
  }
}

/** The state of a newly captured (or adopted) op. */
export const CAPTURED: OpState = { kind: 'pending' };

/**
 * The state of an adopted op: adoption queues a whole database at once, each op as if already
 * sent, so it is never coalesced (a later write of its record queues an op of its own) and taking
 * it into a push rewrites nothing (a rewrite per op was a third of adoption's writes).
 */
export const ADOPTED: OpState = { kind: 'sent' };

/** Taking an op into a push request: a pending op is sent from now on; a sent one stays sent. */
export function sendOp(state: OpState): OpState {
  return state.kind === 'pending' ? { kind: 'sent' } : state;
}

/** A rejection for good (by the server, or before sending: an oversized payload). */
export function failOp(reason: OpFailure): OpState {
  return { kind: 'failed', reason };
}

/** Holding an op back: from pending or sent (a failed op stays failed; a held one keeps its first reason). */
export function holdOp(state: OpState, reason: HoldReason): OpState {
  if (state.kind === 'pending' || state.kind === 'sent') return { kind: 'held', reason, wasSent: state.kind === 'sent' };
  return state;
}

/**
 * Holding a user's op for her while the database is not hers: whatever its state (her failed
 * op is hers too: tried again once released), and over any other hold (it waits for her now).
 */
export function holdForAuthor(state: OpState, reason: HoldReason & { code: AuthorHold }): OpState {
  return { kind: 'held', reason, wasSent: state.kind === 'held' ? state.wasSent : state.kind !== 'pending' };
}

/** True for a hold that waits for the op's author (`holdForAuthor`). */
export function waitsForAuthor(state: OpState): boolean {
  return state.kind === 'held' && (state.reason.code === 'other_user' || state.reason.code === 'signed_out');
}

/** The app retries a failed op (the cause is fixed): it is pending again; any other state is unchanged. */
export function retryOp(state: OpState): OpState {
  return state.kind === 'failed' ? { kind: 'pending' } : state;
}

/** Releasing a held op to what it was before it was held; any other state is unchanged. */
export function releaseOp(state: OpState): OpState {
  if (state.kind !== 'held') return state;
  return state.wasSent ? { kind: 'sent' } : { kind: 'pending' };
}

/**
 * The coalescing rule: a new write of a record replaces the record's latest op
 * only while that op was never sent (the server may already hold a sent one,
 * and a failed one is the app's to discard).
 */
export function takesLaterWrite(latest: OpState): boolean {
  return latest.kind === 'pending';
}

/** What the server's answer to one sent op does to it. */
export type PushVerdict =
  /** The server has the op or a later write: it leaves the outbox. */
  | { kind: 'settle'; result: AppliedResult | DuplicateResult | SupersededResult }
  /** Rejected for clock skew: re-stamped from corrected time and pushed again. */
  | { kind: 'restamp' }
  /** Rejected for good. */
  | { kind: 'fail'; reason: OpRejection }
  /** Rejected because the two deployments disagree (the server does not sync the table as declared): held until released. */
  | { kind: 'hold'; reason: HoldReason & { code: 'unknown_table' | 'pk_mismatch' } };

/** A rejection code that says the server's configuration differs from the app's, not that the write is wrong. */
export function isConfigMismatch(code: string): code is 'unknown_table' | 'pk_mismatch' {
  return code === 'unknown_table' || code === 'pk_mismatch';
}

/** Classifies the server's answer to one op. */
export function judgeResult(result: OpResult): PushVerdict {
  switch (result.status) {
    case 'applied':
    case 'duplicate':
    case 'superseded':
      return { kind: 'settle', result };
    case 'rejected': {
      const { code, message, retryable } = result.error;
      if (retryable) return { kind: 'restamp' };
      if (isConfigMismatch(code)) return { kind: 'hold', reason: { code, message } };
      return { kind: 'fail', reason: result.error };
    }
  }
}
