/**
 * Capture: a Dexie DBCore middleware that turns every local write to a synced
 * table into an outbox op, stamped and committed in the same IndexedDB
 * transaction as the row, together with the HLC state (PROTOCOL.md section 6).
 *
 * Transactions the engine marks as remote (`CaptureRuntime.remoteTransactions`)
 * pass through untouched, so applied server changes are never captured.
 */
import { Dexie } from 'dexie';
import type {
  DBCore,
  DBCoreMutateRequest,
  DBCoreMutateResponse,
  DBCoreTable,
  DBCoreTransaction,
  Middleware,
} from 'dexie';
import { formatHlc, hlcSend, type HlcState, type RecordPayload } from '@or3/sync-protocol';
import { newOpId } from './ids.js';
import {
  clockStateFromRow,
  clockStateRow,
  copyClockState,
  mayHoldTombstones,
  noteTombstones,
  type ClockState,
} from './clock-state.js';
import {
  CAPTURE_TABLES,
  OUTBOX_TABLE,
  STATE_KEYS,
  STATE_TABLE,
  TOMBSTONES_TABLE,
  type PendingOpRow,
  type SyncStateRow,
  type SyncedTable,
  type TombstoneRow,
} from './schema.js';
import { rowSyncs } from './table-conventions.js';

/** What the middleware shares with its engine. */
export interface CaptureRuntime {
  tables: Map<string, SyncedTable>;
  /** Set by the engine once the database is open; writes before that throw. */
  deviceId: string | null;
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

const NO_FAILURES: DBCoreMutateResponse = { numFailures: 0, failures: {}, lastResult: undefined };

/**
 * Dexie tracks the current transaction in a zone (PSD) that native `await`
 * inside a middleware does not carry. Lower middlewares read it, so every
 * call down runs in the zone the mutation arrived in.
 */
interface DexieZones {
  PSD: unknown;
  usePSD<T>(psd: unknown, fn: () => T): T;
}
const zones = Dexie.Promise as unknown as DexieZones;

/**
 * `down` with its tables built once: Dexie builds a fresh chain of middleware
 * tables on every `table()` call, which costs more than a small write.
 */
function withTableCache(down: DBCore): DBCore {
  const tables = new Map<string, DBCoreTable>();
  return {
    ...down,
    table(name) {
      let table = tables.get(name);
      if (!table) tables.set(name, (table = down.table(name)));
      return table;
    },
  };
}

/** A view of `down` whose tables run every call in the caller's zone. */
function zonedCore(down: DBCore): DBCore {
  const psd = zones.PSD;
  const zoned = <A, R>(fn: (arg: A) => R) => (arg: A) => zones.usePSD(psd, () => fn(arg));
  return {
    ...down,
    table(name) {
      const table = down.table(name);
      return {
        ...table,
        mutate: zoned((req) => table.mutate(req)),
        get: zoned((req) => table.get(req)),
        getMany: zoned((req) => table.getMany(req)),
        query: zoned((req) => table.query(req)),
        openCursor: zoned((req) => table.openCursor(req)),
        count: zoned((req) => table.count(req)),
      };
    },
  };
}

/** The Dexie middleware; register it with `db.use(createCaptureMiddleware(runtime))`. */
export function createCaptureMiddleware(runtime: CaptureRuntime): Middleware<DBCore> {
  return {
    stack: 'dbcore',
    name: 'or3-sync-capture',
    // Below Dexie's hooks middleware (level 2): app hooks shape a row before it is stamped, and the
    // engine's own tables are written without the per-transaction table objects the hooks build.
    level: 1.5,
    create(down: DBCore): Partial<DBCore> {
      const memory: CaptureMemory = { tombstoneTables: null };
      const below = withTableCache(down);
      // Dexie asks for tables and scopes per transaction; both are built once here.
      const capturing = new Map<string, DBCoreTable>();
      const scopes = new Map<string, string[]>();
      return {
        ...down,
        transaction(stores, mode, options) {
          if (mode !== 'readwrite') return down.transaction(stores, mode, options);
          const id = stores.join('\u0000');
          let widened = scopes.get(id);
          if (!widened) {
            widened = stores.some((name) => runtime.tables.has(name)) ? [...new Set([...stores, ...CAPTURE_TABLES])] : stores;
            scopes.set(id, widened);
          }
          return down.transaction(widened, mode, options);
        },
        table(name) {
          const table = below.table(name);
          const synced = runtime.tables.get(name);
          if (!synced) return table;
          let captured = capturing.get(name);
          if (!captured) {
            captured = {
              ...table,
              mutate(req) {
                // Writes of the app's upgrade() functions are not captured: the engine is not open
                // yet, and every device runs the same upgrade on its own copy (adoption reconciles them).
                if (runtime.remoteTransactions.has(req.trans) || isUpgradeTransaction(req.trans)) return table.mutate(req);
                const zoned = zonedCore(below);
                return captureMutation(zoned, zoned.table(name), synced, runtime, memory, req);
              },
            } satisfies DBCoreTable;
            capturing.set(name, captured);
          }
          return captured;
        },
      };
    },
  };
}

function isUpgradeTransaction(trans: DBCoreTransaction): boolean {
  return (trans as unknown as IDBTransaction).mode === 'versionchange';
}

/** One captured write, before it is stamped. */
interface LocalWrite {
  /** Index in the original request's values or keys. */
  index: number;
  pk: unknown;
  /** The app's new row, or null for a delete. */
  value: RecordPayload | null;
}

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
interface CaptureMemory {
  tombstoneTables: string[] | null;
}

/** The inputs a write is stamped from. */
interface StampInputs {
  rows: (RecordPayload | undefined)[];
  tombstones: (TombstoneRow | undefined)[];
  hlc: HlcState;
}

/** Everything of a write's stamping that does not depend on what is stored. */
interface Stamping {
  deviceId: string;
  opIds: string[];
  /** `hlcNow()` for each write. */
  nows: number[];
  appNow: number;
  capturedAt: number;
}

/** The rows, ops and tombstones a mutation writes, and the HLC after it. */
interface WritePlan {
  puts: { write: LocalWrite; row: RecordPayload }[];
  removals: LocalWrite[];
  ops: PendingOpRow[];
  tombstones: TombstoneRow[];
  hlc: HlcState;
}

/** Stamps `writes` (PROTOCOL.md sections 2 and 6): a pure function of what is stored and the stamping. */
function planWrites(synced: SyncedTable, writes: LocalWrite[], pks: string[], inputs: StampInputs, stamping: Stamping): WritePlan {
  const plan: WritePlan = { puts: [], removals: [], ops: [], tombstones: [], hlc: inputs.hlc };
  // Latest row and clock per key within this request, so a key written twice stacks its clocks.
  const current = new Map<string, { row: RecordPayload | undefined; clock: number }>();
  writes.forEach((write, i) => {
    const pk = pks[i]!;
    const stored = inputs.rows[i];
    // A row the table's filter keeps local is written as the app wrote it: no stamp, no op.
    const judged = write.value ?? current.get(pk)?.row ?? stored;
    if (judged && !rowSyncs(synced.conventions, judged)) {
      if (write.value) plan.puts.push({ write, row: write.value });
      else plan.removals.push(write);
      current.delete(pk);
      return;
    }
    const before = current.get(pk) ?? {
      row: stored,
      clock: Math.max(numberOr0(stored?.clock), numberOr0(inputs.tombstones[i]?.clock)),
    };
    const clock = before.clock + 1;
    plan.hlc = hlcSend(plan.hlc, stamping.nows[i]!);
    const stamp = formatHlc(plan.hlc.ms, plan.hlc.counter, stamping.deviceId);
    const opId = stamping.opIds[i]!;
    const isDelete = write.value === null || write.value.deleted === true;
    const row = isDelete
      ? tombstoneRow(synced, write.pk, write.value ?? before.row, clock, stamp, stamping.appNow)
      : liveRow(synced, write.value!, before.row, clock, stamp, stamping.appNow);
    current.set(pk, { row, clock });
    if (isDelete && synced.deletes === 'hard') plan.removals.push(write);
    else plan.puts.push({ write, row });
    if (isDelete) {
      plan.tombstones.push({
        table_name: synced.name,
        pk,
        clock,
        hlc: stamp,
        op_id: opId,
        deleted_at: numberOrNull(row.deleted_at),
        server_version: null,
        recorded_at: stamping.capturedAt,
      });
    }
    plan.ops.push({
      op_id: opId,
      table_name: synced.name,
      operation: isDelete ? 'delete' : 'put',
      pk,
      payload: row,
      clock,
      hlc: stamp,
      device_id: stamping.deviceId,
      status: 'pending',
      sent: 0,
      attempts: 0,
      error: null,
      created_at: stamping.capturedAt,
    });
  });
  return plan;
}

/** Advances the transaction's clock state to `plan`'s HLC (in place, with no await in between). */
function advance(state: ClockState, synced: SyncedTable, plan: WritePlan): void {
  state.ms = plan.hlc.ms;
  state.counter = plan.hlc.counter;
  if (plan.tombstones.length > 0) noteTombstones(state, [synced.name]);
}

function sameClockState(a: ClockState, b: ClockState): boolean {
  return (
    a.ms === b.ms &&
    a.counter === b.counter &&
    (a.tombstoneTables === null) === (b.tombstoneTables === null) &&
    (a.tombstoneTables ?? []).join('\u0000') === (b.tombstoneTables ?? []).join('\u0000')
  );
}

/** Captures one mutation, after any earlier capture of the same transaction. */
function captureMutation(
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
  const outbox = down.table(OUTBOX_TABLE);
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
    capturedAt: Date.now(),
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
        outbox.mutate({ trans, type: 'add', values: plan.ops }),
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
    if (wrongOps.length > 0) fixes.push(outbox.mutate({ trans, type: 'put', values: wrongOps }));
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
      appendAtOnce ? outbox.mutate({ trans, type: 'add', values: plan.ops }) : null,
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
    settled.push(outbox.mutate({ trans, type: 'delete', keys: orphans }));
  }
  if (committedTombstones.length > 0) {
    settled.push(tombTable.mutate({ trans, type: 'put', values: dedupeLast(committedTombstones) }));
  }
  const appendedLater =
    appended === null && runtime.pendingEstimate + committedOps.length <= runtime.outboxSoftLimit
      ? outbox.mutate({ trans, type: 'add', values: committedOps }).then(() => committedOps.length)
      : null;
  if (appendedLater) settled.push(appendedLater);
  await Promise.all(settled);
  const added =
    appended !== null ? committedOps.length : appendedLater ? await appendedLater : await appendToOutbox(down, trans, committedOps);
  if (committedOps.length > 0) {
    const coalesced = committedOps.length - added;
    (trans as unknown as IDBTransaction).addEventListener('complete', () => runtime.onCaptured(added, coalesced));
  }
  return response;
}

/** Largest write whose writes go out with its reads, on foresight. */
const PIPELINED_WRITES_MAX = 64;

/** Below this many keys, reading each key is cheaper than reading their key range. */
const RANGE_READ_MIN_KEYS = 16;

/**
 * The records at `keys` (whose ids, as strings, are `ids`), in order. Many
 * keys whose ids order like the keys (`bounds` maps the lowest and highest id
 * to keys) are read as their key range in one request, bounded to twice their
 * number of records, so a bulk write into an empty or sparse key range costs
 * one request instead of one per key; a denser range falls back to one get
 * per key.
 */
async function readRecords<T>(
  table: DBCoreTable,
  trans: DBCoreTransaction,
  keys: unknown[],
  ids: string[],
  idOf: (record: T) => string,
  bounds: ((lower: string, upper: string) => [unknown, unknown]) | null,
): Promise<(T | undefined)[]> {
  const perKey = () => table.getMany({ trans, keys }) as Promise<(T | undefined)[]>;
  if (keys.length < RANGE_READ_MIN_KEYS || bounds === null) return perKey();
  let lower = ids[0]!;
  let upper = ids[0]!;
  for (const id of ids) {
    if (id < lower) lower = id;
    if (id > upper) upper = id;
  }
  const [low, high] = bounds(lower, upper);
  const limit = keys.length * 2;
  const { result } = await table.query({
    trans,
    values: true,
    limit: limit + 1,
    query: { index: table.schema.primaryKey, range: { type: 2 /* DBCoreRangeType.Range */, lower: low, upper: high } },
  });
  if (result.length > limit) return perKey();
  const byId = new Map<string, T>();
  for (const record of result as T[]) byId.set(idOf(record), record);
  return ids.map((id) => byId.get(id));
}

/** Expands any mutation into per-record writes (deletes get their keys resolved, a range delete its rows). */
async function collectWrites(
  table: DBCoreTable,
  synced: SyncedTable,
  req: DBCoreMutateRequest,
): Promise<{ writes: LocalWrite[]; rows?: (RecordPayload | undefined)[] }> {
  switch (req.type) {
    case 'add':
    case 'put':
      return {
        writes: req.values.map((value: RecordPayload, index) => {
          const pk = value?.[synced.primaryKey];
          if (pk === undefined || pk === null || pk === '') {
            throw new CaptureError(`a row of ${synced.name} has no ${synced.primaryKey}`);
          }
          return { index, pk, value };
        }),
      };
    case 'delete':
      return { writes: req.keys.map((pk, index) => ({ index, pk, value: null })) };
    case 'deleteRange': {
      const primaryKey = table.schema.primaryKey;
      const extractKey = primaryKey.extractKey;
      const { result } = await table.query({
        trans: req.trans,
        values: extractKey !== null,
        query: { index: primaryKey, range: req.range },
      });
      if (extractKey === null) return { writes: result.map((pk, index) => ({ index, pk, value: null })) };
      return {
        writes: (result as RecordPayload[]).map((row, index) => ({ index, pk: extractKey(row), value: null })),
        rows: result as RecordPayload[],
      };
    }
  }
}

/**
 * Writes the stamped rows below the middleware and answers in the shape of the
 * original request (results and failures indexed like its values or keys).
 */
async function writeRows(
  table: DBCoreTable,
  req: DBCoreMutateRequest,
  count: number,
  puts: { write: LocalWrite; row: RecordPayload }[],
  removals: LocalWrite[],
): Promise<DBCoreMutateResponse> {
  const failures: Record<number, Error> = {};
  const results: unknown[] = new Array(count);
  if (puts.length > 0) {
    const res = await table.mutate({
      trans: req.trans,
      type: req.type === 'add' ? 'add' : 'put',
      values: puts.map((p) => p.row),
    });
    puts.forEach((p, i) => {
      const failure = res.failures[i];
      if (failure) failures[p.write.index] = failure;
      else results[p.write.index] = res.results?.[i] ?? p.write.pk;
    });
  }
  if (removals.length > 0) {
    const res = await table.mutate({ trans: req.trans, type: 'delete', keys: removals.map((w) => w.pk) });
    removals.forEach((w, i) => {
      const failure = res.failures[i];
      if (failure) failures[w.index] = failure;
      else results[w.index] = w.pk;
    });
  }
  const numFailures = Object.keys(failures).length;
  if (req.type === 'delete' || req.type === 'deleteRange') {
    return { numFailures, failures, lastResult: undefined };
  }
  return { numFailures, failures, results, lastResult: results[count - 1] };
}

/** Appends ops one by one, coalescing never-sent ops per record (the outbox is above its soft limit). */
async function appendToOutbox(down: DBCore, trans: DBCoreTransaction, ops: PendingOpRow[]): Promise<number> {
  if (ops.length === 0) return 0;
  const outbox = down.table(OUTBOX_TABLE);
  const byRecord = outbox.schema.getIndexByKeyPath(['table_name', 'pk']);
  if (!byRecord) throw new CaptureError('_or3sync_outbox lacks its [table_name+pk] index');
  let added = 0;
  for (const op of ops) {
    const { result } = await outbox.query({
      trans,
      values: true,
      query: { index: byRecord, range: equalRange([op.table_name, op.pk]) },
    });
    const last = (result as PendingOpRow[]).reduce<PendingOpRow | undefined>(
      (latest, row) => (latest === undefined || (row.seq ?? 0) > (latest.seq ?? 0) ? row : latest),
      undefined,
    );
    if (last && last.sent === 0 && last.status === 'pending') {
      await outbox.mutate({ trans, type: 'put', values: [{ ...op, seq: last.seq }] });
    } else {
      await outbox.mutate({ trans, type: 'add', values: [op] });
      added += 1;
    }
  }
  return added;
}

function equalRange(key: unknown) {
  return { type: 1 /* DBCoreRangeType.Equal */, lower: key, upper: key } as const;
}

function liveRow(
  synced: SyncedTable,
  value: RecordPayload,
  before: RecordPayload | undefined,
  clock: number,
  hlc: string,
  appNow: number,
): RecordPayload {
  const row: RecordPayload = {
    ...value,
    clock,
    hlc,
    deleted: false,
    deleted_at: null,
    created_at: value.created_at ?? before?.created_at ?? appNow,
    updated_at: appNow,
  };
  if (synced.orderKey) row.order_key = before?.order_key ?? value.order_key ?? hlc;
  return row;
}

function tombstoneRow(
  synced: SyncedTable,
  pk: unknown,
  base: RecordPayload | null | undefined,
  clock: number,
  hlc: string,
  appNow: number,
): RecordPayload {
  const row: RecordPayload = {
    ...(base ?? {}),
    [synced.primaryKey]: pk,
    clock,
    hlc,
    deleted: true,
    deleted_at: base?.deleted === true && typeof base.deleted_at === 'number' ? base.deleted_at : appNow,
    updated_at: appNow,
  };
  if (row.created_at === undefined) row.created_at = appNow;
  return row;
}

function dedupeLast(tombstones: TombstoneRow[]): TombstoneRow[] {
  const byPk = new Map<string, TombstoneRow>();
  for (const t of tombstones) byPk.set(t.pk, t);
  return [...byPk.values()];
}

/** The wire form of a local primary key. */
export function pkToWire(pk: unknown): string {
  return typeof pk === 'string' ? pk : String(pk);
}

function numberOr0(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' ? value : null;
}
