/**
 * Every read and write of the outbox through Dexie's Table API: counting,
 * the batch a push takes, an op's state transitions, the ops of records,
 * discarding. Functions that write run inside the caller's transaction when
 * there is one (it must list `OUTBOX_SCOPE`). Held ops (another user's,
 * `held.ts`) are in none of these: not pushed, not counted, not a record's.
 */
import type { Collection, Dexie } from 'dexie';
import type { RecordPayload } from '@or3/sync-protocol';
import { chunkedWrite } from '../chunked-write.js';
import { failOp, holdOp, opState, releaseOp, retryOp, sendOp, stateColumns, STORED_STATUS, waitsForAuthor, type HoldReason, type OpFailure, type OpState } from './op-state.js';
import { isActive, latestOp, outboxTable, type PendingOpRow } from './table.js';

const outbox = outboxTable;

/** Ops waiting to be pushed (never sent, or sent and not answered); failed ones are not counted. */
export function countQueued(db: Dexie): Promise<number> {
  return outbox(db).where('status').equals(STORED_STATUS.pending).count();
}

/** Ops the server rejected for good. */
export function countFailed(db: Dexie): Promise<number> {
  return outbox(db).where('status').equals(STORED_STATUS.failed).count();
}

/** Ops the server rejected for good, in outbox order. */
export function failedOps(db: Dexie): Promise<PendingOpRow[]> {
  return outbox(db).where('status').equals(STORED_STATUS.failed).toArray();
}

/** Every held op, other users' too (never pushed until released). */
export function countHeld(db: Dexie): Promise<number> {
  return outbox(db).where('status').equals(STORED_STATUS.held).count();
}

/** This user's ops held for the server's configuration (`unknown_table`, `pk_mismatch`): not another user's, which are not this user's to count. */
export function heldForServer(db: Dexie): Promise<PendingOpRow[]> {
  return outbox(db)
    .where('status')
    .equals(STORED_STATUS.held)
    .filter((op) => !waitsForAuthor(opState(op)))
    .toArray();
}

/** Ops held back, in outbox order. */
export function heldOps(db: Dexie): Promise<PendingOpRow[]> {
  return outbox(db).where('status').equals(STORED_STATUS.held).toArray();
}

/** Every op but the held ones, in order. */
export async function activeOps(db: Dexie): Promise<PendingOpRow[]> {
  // One request, filtered here: a filtered read walks a cursor, a round trip per few ops.
  return (await outbox(db).toArray()).filter(isActive);
}

/** Every op but the held ones (failed ones too). */
export function countActive(db: Dexie): Promise<number> {
  return outbox(db).filter(isActive).count();
}

/**
 * The next `size` queued ops in outbox order, each moved to `sent` (so never coalesced again).
 * With `owner`, only that user's ops (and ops of no recorded author): a write another tab
 * captured for another user is never pushed with this user's token.
 */
export function takeBatch(db: Dexie, size: number, owner: string | null): Promise<PendingOpRow[]> {
  return db.transaction('rw', outbox(db), async () => markSent(db, await queuedBatch(db, size, owner)));
}

/** The next `size` queued ops in outbox order, `owner`'s (as `takeBatch` takes them), left as they are. */
export async function queuedBatch(db: Dexie, size: number, owner: string | null): Promise<PendingOpRow[]> {
  const mine = (op: PendingOpRow) => owner === null || op.owner === undefined || op.owner === owner;
  const queued = outbox(db).where('status').equals(STORED_STATUS.pending);
  // One request for the next `size` ops; walking them with a filter (a cursor, a round trip
  // each) only when some of them are another user's.
  const ops = await queued.clone().limit(size).toArray();
  return ops.every(mine) ? ops : queued.filter(mine).limit(size).toArray();
}

/** Moves `ops` (read in the caller's transaction, which must list `OUTBOX_SCOPE`) to `sent`; returns them. */
export async function markSent(db: Dexie, ops: PendingOpRow[]): Promise<PendingOpRow[]> {
  const moved: PendingOpRow[] = [];
  for (const op of ops) {
    const before = opState(op);
    const after = sendOp(before);
    if (after.kind === before.kind) continue;
    Object.assign(op, stateColumns(after));
    moved.push(op);
  }
  if (moved.length > 0) await outbox(db).bulkPut(moved);
  return ops;
}

/** Writes `state` as `op`'s new state, counting the attempt. */
function transition(db: Dexie, op: PendingOpRow, state: OpState): Promise<number> {
  return outbox(db).update(op.seq!, { ...stateColumns(state), attempts: op.attempts + 1 });
}

/** `op` is rejected for good: it stays, failed, until the app discards it. */
export async function markFailed(db: Dexie, op: PendingOpRow, reason: OpFailure): Promise<void> {
  await transition(db, op, failOp(reason));
}

/** `op` is held back for `reason` (a pending or sent op; any other state is kept). */
export async function markHeld(db: Dexie, op: PendingOpRow, reason: HoldReason): Promise<void> {
  const after = holdOp(opState(op), reason);
  if (after.kind === 'held') await outbox(db).update(op.seq!, stateColumns(after));
}

/** Releases the held ops that `which` selects to the state they had before; returns how many. */
export function releaseHeld(db: Dexie, which: (op: PendingOpRow, reason: HoldReason) => boolean): Promise<number> {
  return db.transaction('rw', outbox(db), async () => {
    const released: PendingOpRow[] = [];
    for (const op of await heldOps(db)) {
      const state = opState(op);
      if (state.kind !== 'held' || !which(op, state.reason)) continue;
      released.push({ ...op, ...stateColumns(releaseOp(state)) });
    }
    if (released.length > 0) await outbox(db).bulkPut(released);
    return released.length;
  });
}

/** The failed ops `which` selects are pending again (the app retries them); returns how many. */
export function retryFailed(db: Dexie, which: (op: PendingOpRow) => boolean): Promise<number> {
  return db.transaction('rw', outbox(db), async () => {
    const retried: PendingOpRow[] = [];
    for (const op of await failedOps(db)) {
      if (which(op)) retried.push({ ...op, ...stateColumns(retryOp(opState(op))) });
    }
    if (retried.length > 0) await outbox(db).bulkPut(retried);
    return retried.length;
  });
}

/** The answered ops `seqs` leave the outbox. */
export async function removeSettled(db: Dexie, seqs: number[]): Promise<void> {
  // A run of consecutive seqs (a batch pushed in outbox order, all settled) goes in one range delete.
  const sorted = [...seqs].sort((a, b) => a - b);
  const singles: number[] = [];
  const deletes: Promise<unknown>[] = [];
  for (let at = 0; at < sorted.length; ) {
    let end = at;
    while (end + 1 < sorted.length && sorted[end + 1] === sorted[end]! + 1) end++;
    if (end - at + 1 >= RANGE_DELETE_MIN) deletes.push(outbox(db).where(':id').between(sorted[at]!, sorted[end]!, true, true).delete());
    else singles.push(...sorted.slice(at, end + 1));
    at = end + 1;
  }
  if (singles.length > 0) deletes.push(outbox(db).bulkDelete(singles));
  await Promise.all(deletes);
}

/** Shortest run of consecutive seqs `removeSettled` deletes as one range. */
const RANGE_DELETE_MIN = 8;

/** The op stored at `seq`, if still there. */
export function opAt(db: Dexie, seq: number): Promise<PendingOpRow | undefined> {
  return outbox(db).get(seq);
}

/** Gives a sent op a fresh stamp (clock_skew): its state stays `sent`, the attempt counts. */
export async function restamp(db: Dexie, op: PendingOpRow, hlc: string, payload: RecordPayload | null): Promise<void> {
  await outbox(db).update(op.seq!, { hlc, payload, attempts: op.attempts + 1 });
}

/** Moves `order_key` from `from` to `to` in every op of one record that carries it. */
export async function moveOrderKey(db: Dexie, tableName: string, pk: string, from: string, to: string): Promise<void> {
  for (const other of await opsOfRecord(db, tableName, pk).toArray()) {
    if (other.payload?.order_key === from) await outbox(db).update(other.seq!, { payload: { ...other.payload, order_key: to } });
  }
}

/** The failed op `opId`, if any (failed ops are few; an op_id index would slow every capture). */
export function findFailed(db: Dexie, opId: string): Promise<PendingOpRow | undefined> {
  return outbox(db)
    .where('status')
    .equals(STORED_STATUS.failed)
    .filter((row) => row.op_id === opId)
    .first();
}

/** The app discards op `seq` (a failed one). */
export function discard(db: Dexie, seq: number): Promise<void> {
  return outbox(db).delete(seq);
}

/** The ops of one record, in outbox order. */
export function opsOfRecord(db: Dexie, tableName: string, pk: string): Collection<PendingOpRow, number> {
  return outbox(db).where('[table_name+pk]').equals([tableName, pk]).filter(isActive);
}

/** True while any op (failed ones too) of the record is in the outbox. */
export async function hasOps(db: Dexie, tableName: string, pk: string): Promise<boolean> {
  return (await opsOfRecord(db, tableName, pk).count()) > 0;
}

/** The ops of the records `pks` of one table. */
export function opsOfRecords(db: Dexie, tableName: string, pks: string[]): Promise<PendingOpRow[]> {
  return outbox(db)
    .where('[table_name+pk]')
    .anyOf(pks.map((pk) => [tableName, pk]))
    .filter(isActive)
    .toArray();
}

/** The ops of one table's records with keys from `lower` to `upper` (a dense read of many records). */
export function opsInKeyRange(db: Dexie, tableName: string, lower: string, upper: string): Collection<PendingOpRow, number> {
  return outbox(db).where('[table_name+pk]').between([tableName, lower], [tableName, upper], true, true).filter(isActive);
}

/**
 * Of `pks`, the records of `tableName` that have an op in the outbox: one read of the index keys
 * in the range of `pks` (no payloads; adoption's batches find none there), then the ops of the
 * records found, to leave out the held ones.
 */
export async function recordsWithOps(db: Dexie, tableName: string, pks: string[]): Promise<Set<string>> {
  if (pks.length === 0) return new Set();
  let lower = pks[0]!;
  let upper = pks[0]!;
  for (const pk of pks) {
    if (pk < lower) lower = pk;
    if (pk > upper) upper = pk;
  }
  const wanted = new Set(pks);
  const keys = (await outbox(db).where('[table_name+pk]').between([tableName, lower], [tableName, upper], true, true).keys()) as unknown as [string, string][];
  const found = [...new Set(keys.map(([, pk]) => pk))].filter((pk) => wanted.has(pk));
  if (found.length === 0) return new Set();
  return new Set((await opsOfRecords(db, tableName, found)).map((op) => op.pk));
}

/** Appends new ops (adoption) without coalescing. */
export async function appendOps(db: Dexie, ops: PendingOpRow[]): Promise<void> {
  await chunkedWrite(ops, (chunk) => outbox(db).bulkAdd(chunk));
}

/** The latest op per record among `ops`, by record key. */
export function latestPerRecord(ops: Iterable<PendingOpRow>, keyOf: (op: PendingOpRow) => string): Map<string, PendingOpRow> {
  const latest = new Map<string, PendingOpRow>();
  for (const op of ops) {
    const key = keyOf(op);
    const seen = latest.get(key);
    latest.set(key, seen ? latestOp([seen, op])! : op);
  }
  return latest;
}
export * from './held.js';
