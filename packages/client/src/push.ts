/**
 * The push side: sends the outbox in FIFO batches and settles each op by its
 * result (PROTOCOL.md sections 4 and 6): the outbox module takes the batch
 * and judges each answer (`judgeResult`); this file acts on the verdicts.
 * Request-level failures are thrown for the run to classify (`run-end.ts`).
 */
import { applyRemoteVersions, recordKey, runRemoteTransaction, stampOf, versionFromWinner, type RemoteVersion } from './apply.js';
import { sleep } from './backoff.js';
import { readClockState, writeClockState } from './clock-state.js';
import type { EngineContext } from './context.js';
import type { ConflictEvent, ErrorEvent } from './events.js';
import {
  compactJsonBytes,
  formatHlc,
  hlcSend,
  type HlcState,
  type OpResult,
  type PushOp,
  type RecordPayload,
  type OpRejection,
  type SyncErrorCode,
} from '@or3/sync-protocol';
import { judgeResult, outbox, type PendingOpRow } from './outbox/index.js';
import { isSyncProviderError } from './provider.js';
import { EngineRunError } from './run-end.js';
import { STATE_KEYS, STATE_TABLE, TOMBSTONES_TABLE, type SyncedTable, type TombstoneRow } from './schema.js';
import { toWirePayload } from './table-conventions.js';

/** Batches in a row that only re-stamped ops before the pass gives up and backs off. */
const MAX_RESTAMP_ROUNDS = 2;

/** What one push pass did. */
export interface PushOutcome {
  /** Ops that left the outbox (applied, duplicate, superseded). */
  pushed: number;
  failed: number;
  /** Ops held for a configuration mismatch (`unknown_table`, `pk_mismatch`): kept and retried when released. */
  held: number;
  conflicts: ConflictEvent[];
  /** The cursor a settle moved past the pushes' own changes (`pastOwnChanges`), or null. */
  cursor: number | null;
  /** Under a project scope, a settle kept records this device wrote outside the project for a rescan after the push. */
  keptForRescan?: boolean;
}

/** What a push pass is told beyond its batches (`pushPending`). */
export interface PushPassOptions {
  /** Told, after each settling transaction commits, the ops that left the outbox in it and the versions of those applied. */
  onSettled?: (ops: PendingOpRow[], appliedVersions: number[]) => void;
  /** Filled as the pass goes (the caller's, to keep it when a push throws). */
  outcome?: PushOutcome;
  /** Pushes during a rescan, before its swap stores the cursor: the settles leave the cursor alone. */
  duringRescan?: boolean;
}

/**
 * The cursor past a device's own changes: from `cursor`, up through every version of
 * `versions` that follows without a gap. Server versions have no gaps (PROTOCOL.md section 3),
 * so nothing else was committed in between: the pull would bring only those changes back,
 * which the device already holds (its own writes, or later ones). Not under a project scope,
 * where such a change may move a record between projects (a pulled `scope_change`).
 */
export function pastOwnChanges(cursor: number, versions: Iterable<number>): number {
  let past = cursor;
  for (const version of [...versions].sort((a, b) => a - b)) {
    if (version === past + 1) past = version;
    else if (version > past + 1) break;
  }
  return past;
}

/** The wire form of an outbox entry: its payload without local-only fields, in wire names. */
export function toPushOp(op: PendingOpRow, tables: Map<string, SyncedTable>): PushOp {
  const conventions = tables.get(op.table_name)?.conventions;
  return {
    op_id: op.op_id,
    table_name: op.table_name,
    operation: op.operation,
    pk: op.pk,
    payload: op.payload && conventions ? toWirePayload(conventions, op.payload) : op.payload,
    clock: op.clock,
    hlc: op.hlc,
    device_id: op.device_id,
  };
}

/** A fresh `PushOutcome`, nothing pushed yet. */
export function noPushes(): PushOutcome {
  return { pushed: 0, failed: 0, held: 0, conflicts: [], cursor: null };
}

/**
 * A batch moved to `sent` by a transaction that may still be committing (`readRunStart`): its
 * request may go at once, and nothing of it is settled before `committed` resolves. A mark that
 * never commits leaves the ops queued, never sent, so nothing settles them from this push and they
 * go again (their op ids make the server's second answer `duplicate`).
 */
export interface TakenBatch {
  ops: PendingOpRow[];
  /** The transaction that marked `ops` sent committed (rejects with its failure). */
  committed: Promise<void>;
}

/**
 * Pushes every pending op, batch by batch, until none is left (or `signal` aborts: after the
 * push in flight). `first`: a batch the caller already took (`readRunStart`), pushed before any
 * other. Each settle moves the stored cursor past the batch's own applied changes when they
 * follow it without a gap (`pastOwnChanges`; not during a rescan, nor under a project scope).
 */
export async function pushPending(
  ctx: EngineContext,
  signal?: AbortSignal,
  first: TakenBatch | null = null,
  options: PushPassOptions = {},
): Promise<PushOutcome> {
  const outcome = options.outcome ?? noPushes();
  const moveCursor = !options.duringRescan && ctx.scope.projectId == null;
  let batchSize = ctx.settings.pushBatchSize;
  // A backlog (a batch was taken full: more may wait) goes in the largest batches the server takes.
  let backlogBatchSize = ctx.settings.backlogBatches ? Math.max(batchSize, ctx.provider.maxOpsPerPush ?? 0) : batchSize;
  let restampRounds = 0;
  let taken = first?.ops ?? null;
  let marked = first?.committed ?? null;
  for (;;) {
    if (signal?.aborted) break;
    const batch = taken ?? (await outbox.takeBatch(ctx.db, batchSize, ctx.runtime.userId));
    taken = null;
    if (batch.length === 0) break;
    if (batch.length === batchSize) batchSize = backlogBatchSize;
    const sendable = await failOversizedOps(ctx, batch, outcome);
    if (sendable.length === 0) continue;

    let response;
    try {
      const pushing = ctx.provider.push(ctx.scope, sendable.map((op) => toPushOp(op, ctx.runtime.tables)));
      // Nothing of the batch is settled (nor failed) before its `sent` mark committed; a mark that
      // failed fails the run, whatever the server answered.
      const mark = marked;
      marked = null;
      if (mark) await Promise.all([pushing.catch(() => {}), mark]);
      response = await pushing;
    } catch (error) {
      if (isSyncProviderError(error) && error.status === 413 && sendable.length > 1) {
        batchSize = backlogBatchSize = Math.max(1, Math.floor(sendable.length / 2));
        continue;
      }
      if (isSyncProviderError(error) && error.status === 413) {
        await markFailed(ctx, sendable[0]!, { code: 'payload_too_large', message: error.message }, outcome);
        continue;
      }
      throw error;
    }
    if (typeof response.server_time === 'number') ctx.observeServerTime(response.server_time);
    const remaining = ctx.provider.lastRateLimitRemaining;
    const rateLimited = typeof remaining === 'number' && remaining < ctx.settings.rateLimitLowWater;
    // The next batch (writes captured while this push was on its way) is taken in the transaction
    // that settles this one, with the outbox's count: one transaction between two pushes, not
    // three (P11). Not when the loop waits before its next push (a low rate limit) or may give
    // up after this batch (re-stamping that does not help): ops taken and then not sent stay
    // `sent` (as after a `stop()` here), pushed by the next run but never coalesced meanwhile.
    const takeNext = !rateLimited && restampRounds < MAX_RESTAMP_ROUNDS ? batchSize : 0;
    const settled = await settleResults(ctx, sendable, response.results, outcome, takeNext, moveCursor);
    options.onSettled?.(settled.done, settled.appliedVersions);
    await ctx.refreshPendingEstimate(settled.queued);
    taken = settled.next;
    restampRounds = settled.progress === 0 ? restampRounds + 1 : 0;
    if (restampRounds > MAX_RESTAMP_ROUNDS) {
      // Re-stamping did not help (the offset has not settled yet): let the engine back off.
      throw new EngineRunError('clock_skew', 'ops keep being rejected for clock skew');
    }
    if (rateLimited) await sleep(ctx.settings.rateLimitDelayMs, signal);
  }
  return outcome;
}

/** Ops whose payload exceeds the provider's limit fail here, without a request. */
async function failOversizedOps(
  ctx: EngineContext,
  batch: PendingOpRow[],
  outcome: PushOutcome,
): Promise<PendingOpRow[]> {
  const sendable: PendingOpRow[] = [];
  for (const op of batch) {
    const payload = toPushOp(op, ctx.runtime.tables).payload;
    const bytes = payload ? compactJsonBytes(payload) : 0;
    if (bytes > ctx.provider.maxPayloadBytes) {
      await markFailed(
        ctx,
        op,
        { code: 'payload_too_large', message: `payload of ${bytes} bytes exceeds ${ctx.provider.maxPayloadBytes}` },
        outcome,
      );
    } else {
      sendable.push(op);
    }
  }
  return sendable;
}

async function markFailed(
  ctx: EngineContext,
  op: PendingOpRow,
  error: OpRejection,
  outcome: PushOutcome,
): Promise<void> {
  await outbox.markFailed(ctx.db, op, error);
  outcome.failed += 1;
  ctx.events.emit('sync.error:action', failedOpEvent(op, error.code, error.message));
}

function failedOpEvent(op: PendingOpRow, code: SyncErrorCode, message: string, held = false): ErrorEvent {
  return { phase: 'push', code, message, opId: op.op_id, tableName: op.table_name, pk: op.pk, ...(held ? { held } : {}) };
}

/**
 * Settles one answered batch in a single transaction that capture ignores;
 * in the same transaction, counts the ops still queued and, when `takeNext`
 * is above 0, takes the next batch of that many (`outbox.takeBatch`).
 */
async function settleResults(
  ctx: EngineContext,
  ops: PendingOpRow[],
  results: OpResult[],
  outcome: PushOutcome,
  takeNext: number,
  moveCursor: boolean,
): Promise<{ progress: number; queued: number; next: PendingOpRow[] | null; done: PendingOpRow[]; appliedVersions: number[] }> {
  const byOpId = new Map(results.map((r) => [r.op_id, r]));
  const errors: ErrorEvent[] = [];
  const conflicts: ConflictEvent[] = [];
  let progress = 0;
  const left: PendingOpRow[] = [];
  const appliedVersions: number[] = [];
  const after = await runRemoteTransaction(ctx.db, ctx.runtime, [], async () => {
    const tombstones = ctx.db.table<TombstoneRow>(TOMBSTONES_TABLE);
    const winners: RemoteVersion[] = [];
    const done: number[] = [];
    const restamp: PendingOpRow[] = [];
    const outOfScope: [string, string][] = [];
    for (const op of ops) {
      const result = byOpId.get(op.op_id);
      if (!result) continue; // A server answers every op; an unanswered one is simply sent again.
      const verdict = judgeResult(result);
      switch (verdict.kind) {
        case 'settle': {
          done.push(op.seq!);
          left.push(op);
          const settled = verdict.result;
          if (settled.status === 'applied' && typeof settled.server_version === 'number') appliedVersions.push(settled.server_version);
          if (settled.status !== 'superseded' && leavesScope(ctx, op)) outOfScope.push([op.table_name, op.pk]);
          if (settled.status === 'superseded') {
            winners.push(versionFromWinner(op.table_name, op.pk, settled.winner));
            conflicts.push({ tableName: op.table_name, pk: op.pk, local: stampOf(op), remote: stampOf(settled.winner), winner: 'remote' });
          } else if (op.operation === 'delete' && typeof settled.server_version === 'number') {
            const version = settled.server_version;
            const tomb = await tombstones.get([op.table_name, op.pk]);
            if (tomb && tomb.op_id === op.op_id) await tombstones.put({ ...tomb, server_version: version });
          }
          break;
        }
        case 'restamp':
          restamp.push(op);
          break;
        case 'fail':
          await outbox.markFailed(ctx.db, op, verdict.reason);
          errors.push(failedOpEvent(op, verdict.reason.code, verdict.reason.message));
          outcome.failed += 1;
          progress += 1;
          break;
        case 'hold':
          await outbox.markHeld(ctx.db, op, verdict.reason);
          errors.push(failedOpEvent(op, verdict.reason.code, verdict.reason.message, true));
          outcome.held += 1;
          progress += 1;
          break;
      }
    }
    await outbox.removeSettled(ctx.db, done);
    if (outOfScope.length > 0) {
      await keepForRescanAfterPush(ctx, outOfScope);
      outcome.keptForRescan = true;
    }
    progress += done.length;
    outcome.pushed += done.length;
    if (restamp.length > 0) await restampOps(ctx, restamp);
    if (winners.length > 0) {
      const applied = await applyRemoteVersions(ctx.db, ctx.runtime, winners);
      conflicts.push(...applied.conflicts);
    }
    const [queued, next] = await Promise.all([
      outbox.countQueued(ctx.db),
      takeNext > 0 ? outbox.queuedBatch(ctx.db, takeNext, ctx.runtime.userId) : null,
      moveCursor && appliedVersions.length > 0 ? moveCursorPastOwnChanges(ctx, appliedVersions, outcome) : null,
    ]);
    return { queued, next: next && (await outbox.markSent(ctx.db, next)) };
  });
  outcome.conflicts.push(...conflicts);
  for (const event of errors) ctx.events.emit('sync.error:action', event);
  return { progress, ...after, done: left, appliedVersions };
}

/**
 * Under a project scope, whether `op` (pushed and kept by the server) put its record outside the
 * project: a thread whose `project_id` is another project's or none (section 1: threads are in
 * the project their `project_id` names; messages follow their thread, whose own write or the
 * rescan it brings takes them along). The scope's feed never carries such a write when the
 * record was never in the project on the server (written there outside it, or created and moved
 * before its first push, coalesced into one op), so no scope change would ever remove it here.
 */
function leavesScope(ctx: EngineContext, op: PendingOpRow): boolean {
  const projectId = ctx.scope.projectId;
  if (projectId == null || op.table_name !== 'threads') return false;
  const payload = op.payload as RecordPayload | null;
  return payload != null && typeof payload === 'object' && (payload.project_id ?? null) !== projectId;
}

/** Inside the settle's transaction: adds `records` to those the scope rescans once they have no op left (`rescanDueAfterPush`). */
async function keepForRescanAfterPush(ctx: EngineContext, records: [string, string][]): Promise<void> {
  const state = ctx.db.table(STATE_TABLE);
  const key = STATE_KEYS.rescanAfterPush(ctx.cursorKey);
  const kept = (await state.get(key))?.value;
  const all = new Map<string, [string, string]>();
  for (const record of [...(Array.isArray(kept) ? (kept as [string, string][]) : []), ...records]) all.set(recordKey(record[0], record[1]), record);
  await state.put({ key, value: [...all.values()] });
}

/** Inside the settle's transaction: stores the cursor past `versions` (`pastOwnChanges`) when it moves. */
async function moveCursorPastOwnChanges(ctx: EngineContext, versions: number[], outcome: PushOutcome): Promise<void> {
  const state = ctx.db.table(STATE_TABLE);
  const stored = (await state.get(ctx.cursorKey))?.value;
  if (typeof stored !== 'number') return;
  const past = pastOwnChanges(stored, versions);
  if (past === stored) return;
  await state.put({ key: ctx.cursorKey, value: past });
  outcome.cursor = Math.max(outcome.cursor ?? past, past);
}

/**
 * Gives clock-skewed ops a fresh HLC (and their rows, when still that write).
 * The HLC state is pulled back to corrected time first: a state stamped by a
 * fast clock would otherwise keep producing skewed stamps. LWW stays sound
 * because the per-record clock still rises. An op that created a message
 * also gave it its `order_key` (its own hlc, PROTOCOL.md section 1): the key
 * moves to the new stamp, in the row and in every later op of the record, so
 * it stays the creating op's hlc and never changes once the server has it.
 * Each op is re-stamped from its stored copy, and only if it still carries the
 * stamp it was sent with (two tabs may push, and settle, the same batch).
 */
async function restampOps(ctx: EngineContext, ops: PendingOpRow[]): Promise<void> {
  const deviceId = ctx.scope.deviceId;
  const now = ctx.runtime.hlcNow();
  const stored = await readClockState(ctx.db);
  const movedOrderKeys: { op: PendingOpRow; to: string }[] = [];
  let hlc: HlcState = stored.ms <= now ? { ms: stored.ms, counter: stored.counter } : { ms: now - 1, counter: 0 };
  for (const sent of ops) {
    // The op as stored now, not as sent: another tab that pushed the same batch may have
    // re-stamped it already (or it was settled). Its stamp is then that tab's; re-stamping the
    // sent copy again would give the op and its row different stamps and order keys.
    const op = await outbox.opAt(ctx.db, sent.seq!);
    if (!op || op.op_id !== sent.op_id || op.hlc !== sent.hlc) continue;
    hlc = hlcSend(hlc, now);
    const stamp = formatHlc(hlc.ms, hlc.counter, deviceId);
    const createsOrderKey = op.payload?.order_key === op.hlc;
    if (createsOrderKey) movedOrderKeys.push({ op, to: stamp });
    const payload: RecordPayload | null = op.payload
      ? { ...op.payload, hlc: stamp, ...(createsOrderKey ? { order_key: stamp } : {}) }
      : null;
    await outbox.restamp(ctx.db, op, stamp, payload);
    const table = ctx.db.table(op.table_name);
    const row = (await table.get(op.pk)) as RecordPayload | undefined;
    if (row && row.hlc === op.hlc) await table.put({ ...row, hlc: stamp });
    const tomb = (await ctx.db.table(TOMBSTONES_TABLE).get([op.table_name, op.pk])) as TombstoneRow | undefined;
    if (tomb && tomb.op_id === op.op_id) await ctx.db.table(TOMBSTONES_TABLE).put({ ...tomb, hlc: stamp });
  }
  for (const { op, to } of movedOrderKeys) {
    await outbox.moveOrderKey(ctx.db, op.table_name, op.pk, op.hlc, to);
    const table = ctx.db.table(op.table_name);
    const row = (await table.get(op.pk)) as RecordPayload | undefined;
    if (row && row.order_key === op.hlc) await table.put({ ...row, order_key: to });
  }
  await writeClockState(ctx.db, { ...stored, ...hlc });
}
