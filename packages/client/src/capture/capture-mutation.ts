/**
 * Capturing one mutation in its transaction: the clock state read once per
 * transaction, captures of one transaction one after another, and the
 * foresight path (a small put's reads and writes in one round of requests,
 * corrected in the same transaction when the foresight was wrong).
 */
import type { DBCore, DBCoreMutateRequest, DBCoreMutateResponse, DBCoreTable, DBCoreTransaction } from 'dexie';
import type { RecordPayload } from '@or3/sync-protocol';
import { newOpId } from '../ids.js';
import { clockStateFromRow, clockStateRow, copyClockState, mayHoldTombstones, sameClockState, type ClockState } from '../clock-state.js';
import { captureOutbox } from '../outbox/index.js';
import {
  STATE_KEYS,
  STATE_TABLE,
  TOMBSTONES_TABLE,
  type SyncStateRow,
  type SyncedTable,
  type TombstoneRow,
} from '../schema.js';
import { advance, dedupeLast, planWrites, type Stamping, type WritePlan } from './plan.js';
import { collectWrites, pkToWire, readRecords, writeRows } from './record-io.js';
import { CaptureError, type CaptureRuntime } from './runtime.js';

const NO_FAILURES: DBCoreMutateResponse = { numFailures: 0, failures: {}, lastResult: undefined };

/** Largest write whose writes go out with its reads, on foresight. */
const PIPELINED_WRITES_MAX = 64;

/** What capture keeps per IndexedDB transaction. */
interface TransactionCapture {
  /** The clock state, read once; later writes of the transaction stamp from it in memory. */
  clockState: Promise<ClockState> | null;
  /** The transaction's captures run one after another (parallel writes never share a stamp). */
  tail: Promise<unknown>;
}

const transactionCaptures = new WeakMap<DBCoreTransaction, TransactionCapture>();

function transactionCapture(trans: DBCoreTransaction): TransactionCapture {
  let capture = transactionCaptures.get(trans);
  if (!capture) transactionCaptures.set(trans, (capture = { clockState: null, tail: Promise.resolve() }));
  return capture;
}

function clockStateOf(stateTable: DBCoreTable, trans: DBCoreTransaction, capture: TransactionCapture): Promise<ClockState> {
  if (!capture.clockState) {
    capture.clockState = stateTable
      .get({ trans, key: STATE_KEYS.hlc })
      .then((row) => clockStateFromRow(row as SyncStateRow | undefined));
    // A transaction that dies before anyone awaits its state must not report an unhandled rejection.
    capture.clockState.catch(() => {});
  }
  return capture.clockState;
}

/**
 * What capture remembers across transactions in this tab: the tables whose
 * tombstones the latest clock state named. Like `CaptureRuntime.lastClockState`,
 * a guess that lets a write send its requests early; the clock state read in
 * the write's own transaction always has the final say.
 */
export interface CaptureMemory {
  tombstoneTables: string[] | null;
}

/** Captures one mutation, after any earlier capture of the same transaction. */
export function captureMutation(
  down: DBCore,
  table: DBCoreTable,
  synced: SyncedTable,
  runtime: CaptureRuntime,
  memory: CaptureMemory,
  req: DBCoreMutateRequest,
): Promise<DBCoreMutateResponse> {
  const deviceId = runtime.deviceId;
  if (!deviceId) return Promise.reject(new CaptureError('the sync engine is not open yet'));
  const capture = transactionCapture(req.trans);
  const run = capture.tail.then(() => captureInOrder(down, table, synced, runtime, memory, req, capture, deviceId));
  capture.tail = run.catch(() => {});
  return run;
}

/**
 * Captures one mutation. A small put or add whose stored state can be
 * foreseen (the row the app read and wrote back, or no row; the clock state
 * this tab last saw) sends its reads and its writes in one round of
 * IndexedDB requests, then checks the foresight against what the reads
 * returned and rewrites whatever differed, in the same transaction. Any
 * other mutation reads first, then writes. Ops of rows that failed to write
 * are taken back out of the outbox.
 */
async function captureInOrder(
  down: DBCore,
  table: DBCoreTable,
  synced: SyncedTable,
  runtime: CaptureRuntime,
  memory: CaptureMemory,
  req: DBCoreMutateRequest,
  capture: TransactionCapture,
  deviceId: string,
): Promise<DBCoreMutateResponse> {
  const trans = req.trans;
  const stateTable = down.table(STATE_TABLE);
  const tombTable = down.table(TOMBSTONES_TABLE);
  const outbox = captureOutbox(down, trans);
  const knownState = capture.clockState;
  const clockStateRead = clockStateOf(stateTable, trans, capture);
  const collected = await collectWrites(table, synced, req);
  const writes = collected.writes;
  if (writes.length === 0) return req.type === 'deleteRange' || req.type === 'delete' ? NO_FAILURES : table.mutate(req);

  const keys = writes.map((w) => w.pk);
  const pks = keys.map(pkToWire);
  const small = writes.length <= PIPELINED_WRITES_MAX && runtime.pendingEstimate + writes.length <= runtime.outboxSoftLimit;
  // Foresight: the clock state this transaction or tab last had, and for each row the app's own
  // copy when it carries a clock (read, changed, written back), else no row.
  const foreseenState = knownState ? await knownState : runtime.lastClockState;
  const foresee = small && (req.type === 'put' || req.type === 'add') && foreseenState !== null;
  const rowOf = (row: RecordPayload) => pkToWire(row[synced.primaryKey]);
  // An add fails on an existing row, so there is nothing to read for it. Reads that go out
  // before foreseen writes must not wait for a first answer (as a range read may), so they read per key.
  const rangeable = !foresee && keys.every((k) => typeof k === 'string');
  const rowsRead: Promise<(RecordPayload | undefined)[]> = collected.rows
    ? Promise.resolve(collected.rows)
    : req.type === 'add'
      ? Promise.resolve(new Array<RecordPayload | undefined>(writes.length))
      : readRecords(table, trans, keys, pks, rowOf, rangeable ? (lower, upper) => [lower, upper] : null);
  const readTombstones = () =>
    readRecords<TombstoneRow>(
      tombTable,
      trans,
      pks.map((pk) => [synced.name, pk]),
      pks,
      (t) => t.pk,
      foresee
        ? null
        : (lower, upper) => [
            [synced.name, lower],
            [synced.name, upper],
          ],
    );
  const hinted = memory.tombstoneTables === null || memory.tombstoneTables.includes(synced.name);
  const tombstonesRead = hinted ? readTombstones() : null;
  const stamping: Stamping = {
    deviceId,
    opIds: writes.map(() => newOpId()),
    nows: writes.map(() => runtime.hlcNow()),
    appNow: runtime.appNow(),
    capturedAt: runtime.now(),
    owner: runtime.userId,
  };
  let early: { plan: WritePlan; state: ClockState; written: Promise<[DBCoreMutateResponse, unknown, DBCoreMutateResponse]> } | null =
    null;
  if (foresee && foreseenState) {
    const plan = planWrites(
      synced,
      writes,
      pks,
      {
        rows: writes.map((w) => (req.type === 'put' && typeof w.value?.clock === 'number' ? w.value : undefined)),
        tombstones: [],
        hlc: { ms: foreseenState.ms, counter: foreseenState.counter },
      },
      stamping,
    );
    const state = copyClockState(foreseenState);
    advance(state, synced, plan);
    // Tombstones of puts wait for the rows' outcome (any put may fail), so none go early.
    early = {
      plan,
      state,
      written: Promise.all([
        writeRows(table, req, writes.length, plan.puts, plan.removals),
        stateTable.mutate({ trans, type: 'put', values: [clockStateRow(state)] }),
        outbox.append(plan.ops),
      ]),
    };
    early.written.catch(() => {});
  }

  const [clockState, existingRows, hintedTombstones] = await Promise.all([clockStateRead, rowsRead, tombstonesRead]);
  memory.tombstoneTables = clockState.tombstoneTables === null ? null : [...clockState.tombstoneTables];
  let tombstones: (TombstoneRow | undefined)[] = hintedTombstones ?? [];
  if (!hintedTombstones && mayHoldTombstones(clockState, synced.name)) tombstones = await readTombstones();

  // From here to the writes nothing awaits: the clock state is this transaction's, advanced in one step.
  const plan = planWrites(
    synced,
    writes,
    pks,
    { rows: existingRows, tombstones, hlc: { ms: clockState.ms, counter: clockState.counter } },
    stamping,
  );
  advance(clockState, synced, plan);
  runtime.lastClockState = copyClockState(clockState);

  let response: DBCoreMutateResponse;
  let appended: DBCoreMutateResponse | null;
  if (early) {
    const [written, , added] = await early.written;
    response = written;
    appended = added;
    const foreseen = early.plan;
    // Rewrite what the foresight got wrong: rows, ops (same op ids, at the seq they got) and the state.
    const fixes: Promise<unknown>[] = [];
    const wrongRows = plan.puts.filter(
      (p, i) => response.failures[p.write.index] === undefined && JSON.stringify(p.row) !== JSON.stringify(foreseen.puts[i]!.row),
    );
    if (wrongRows.length > 0) fixes.push(table.mutate({ trans, type: 'put', values: wrongRows.map((p) => p.row) }));
    const wrongOps = plan.ops.flatMap((op, i) =>
      response.failures[writes[i]!.index] === undefined && JSON.stringify(op) !== JSON.stringify(foreseen.ops[i])
        ? [{ ...op, seq: added.results![i] as number }]
        : [],
    );
    if (wrongOps.length > 0) fixes.push(outbox.rewrite(wrongOps));
    if (!sameClockState(clockState, early.state)) {
      fixes.push(stateTable.mutate({ trans, type: 'put', values: [clockStateRow(clockState)] }));
    }
    await Promise.all(fixes);
  } else {
    // The outbox ops go along with the rows (IndexedDB never idles between the two) and the
    // ops of rows that failed are taken back. Above the soft limit ops coalesce one by one instead.
    // (fake-indexeddb handles a long queue of requests in quadratic time, so there a bulk write
    // looks slower this way than it is in a browser.)
    const appendAtOnce = runtime.pendingEstimate + writes.length <= runtime.outboxSoftLimit;
    // Deleting by key never fails in IndexedDB, so tombstones of pure deletes can go with the rows;
    // any put may fail (a unique index), so its tombstones wait for the outcome.
    const tombstonesAtOnce = appendAtOnce && plan.puts.length === 0;
    const [written, , added] = await Promise.all([
      writeRows(table, req, writes.length, plan.puts, plan.removals),
      stateTable.mutate({ trans, type: 'put', values: [clockStateRow(clockState)] }),
      appendAtOnce ? outbox.append(plan.ops) : null,
      tombstonesAtOnce && plan.tombstones.length > 0
        ? tombTable.mutate({ trans, type: 'put', values: dedupeLast(plan.tombstones) })
        : null,
    ]);
    response = written;
    appended = added;
    if (tombstonesAtOnce) plan.tombstones = [];
  }

  const failed = new Set(Object.keys(response.failures).map(Number));
  const committedOps = failed.size === 0 ? plan.ops : plan.ops.filter((_, i) => !failed.has(writes[i]!.index));
  const committedOpIds = failed.size === 0 ? null : new Set(committedOps.map((op) => op.op_id));
  const committedTombstones =
    committedOpIds === null ? plan.tombstones : plan.tombstones.filter((t) => committedOpIds.has(t.op_id));
  const settled: Promise<unknown>[] = [];
  if (appended && failed.size > 0) {
    const orphans = plan.ops.flatMap((_, i) => (failed.has(writes[i]!.index) ? [appended.results![i]] : []));
    settled.push(outbox.takeBack(orphans));
  }
  if (committedTombstones.length > 0) {
    settled.push(tombTable.mutate({ trans, type: 'put', values: dedupeLast(committedTombstones) }));
  }
  const appendedLater =
    appended === null && runtime.pendingEstimate + committedOps.length <= runtime.outboxSoftLimit
      ? outbox.append(committedOps).then(() => committedOps.length)
      : null;
  if (appendedLater) settled.push(appendedLater);
  await Promise.all(settled);
  const added =
    appended !== null ? committedOps.length : appendedLater ? await appendedLater : await outbox.appendCoalescing(committedOps);
  if (committedOps.length > 0) {
    const coalesced = committedOps.length - added;
    (trans as unknown as IDBTransaction).addEventListener('complete', () => runtime.onCaptured(added, coalesced));
  }
  return response;
}
