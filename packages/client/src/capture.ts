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
import { formatHlc, hlcSend, type HlcState } from './hlc.js';
import { newOpId } from './ids.js';
import {
  CAPTURE_TABLES,
  STATE_KEYS,
  type PendingOpRow,
  type SyncedTable,
  type TombstoneRow,
} from './schema.js';
import type { RecordPayload } from './wire.js';

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
    create(down: DBCore): Partial<DBCore> {
      return {
        ...down,
        transaction(stores, mode, options) {
          const widened =
            mode === 'readwrite' && stores.some((name) => runtime.tables.has(name))
              ? [...new Set([...stores, ...CAPTURE_TABLES])]
              : stores;
          return down.transaction(widened, mode, options);
        },
        table(name) {
          const table = down.table(name);
          const synced = runtime.tables.get(name);
          if (!synced) return table;
          return {
            ...table,
            mutate(req) {
              if (runtime.remoteTransactions.has(req.trans)) return table.mutate(req);
              const zoned = zonedCore(down);
              return captureMutation(zoned, zoned.table(name), synced, runtime, req);
            },
          } satisfies DBCoreTable;
        },
      };
    },
  };
}

/** One captured write, before it is stamped. */
interface LocalWrite {
  /** Index in the original request's values or keys. */
  index: number;
  pk: unknown;
  /** The app's new row, or null for a delete. */
  value: RecordPayload | null;
}

async function captureMutation(
  down: DBCore,
  table: DBCoreTable,
  synced: SyncedTable,
  runtime: CaptureRuntime,
  req: DBCoreMutateRequest,
): Promise<DBCoreMutateResponse> {
  const deviceId = runtime.deviceId;
  if (!deviceId) throw new CaptureError('the sync engine is not open yet');
  const trans = req.trans;
  const writes = await collectWrites(table, synced, req);
  if (writes.length === 0) return req.type === 'deleteRange' || req.type === 'delete' ? NO_FAILURES : table.mutate(req);

  const keys = writes.map((w) => w.pk);
  const pks = keys.map(pkToWire);
  const tombTable = down.table('sync_tombstones');
  const stateTable = down.table('sync_state');
  const [existingRows, tombstones, hlcRow] = await Promise.all([
    table.getMany({ trans, keys }),
    tombTable.getMany({ trans, keys: pks.map((pk) => [synced.name, pk]) }),
    stateTable.get({ trans, key: STATE_KEYS.hlc }),
  ]);

  let hlc: HlcState = (hlcRow?.value as HlcState | undefined) ?? { ms: 0, counter: 0 };
  const appNow = runtime.appNow();
  // Latest row and clock per key within this request, so a key written twice stacks its clocks.
  const current = new Map<string, { row: RecordPayload | undefined; clock: number }>();
  const puts: { write: LocalWrite; row: RecordPayload }[] = [];
  const removals: LocalWrite[] = [];
  const ops: PendingOpRow[] = [];
  const newTombstones: TombstoneRow[] = [];

  writes.forEach((write, i) => {
    const pk = pks[i]!;
    const before = current.get(pk) ?? {
      row: existingRows[i] as RecordPayload | undefined,
      clock: Math.max(numberOr0(existingRows[i]?.clock), numberOr0(tombstones[i]?.clock)),
    };
    const clock = before.clock + 1;
    hlc = hlcSend(hlc, runtime.hlcNow());
    const stamp = formatHlc(hlc.ms, hlc.counter, deviceId);
    const opId = newOpId();
    const isDelete = write.value === null || write.value.deleted === true;
    const row = isDelete
      ? tombstoneRow(synced, write.pk, write.value ?? before.row, clock, stamp, appNow)
      : liveRow(synced, write.value!, before.row, clock, stamp, appNow);
    current.set(pk, { row, clock });

    if (isDelete && synced.deletes === 'hard') removals.push(write);
    else puts.push({ write, row });
    if (isDelete) {
      newTombstones.push({
        table_name: synced.name,
        pk,
        clock,
        hlc: stamp,
        op_id: opId,
        deleted_at: numberOrNull(row.deleted_at),
        server_version: null,
        recorded_at: Date.now(),
      });
    }
    ops.push({
      op_id: opId,
      table_name: synced.name,
      operation: isDelete ? 'delete' : 'put',
      pk,
      payload: row,
      clock,
      hlc: stamp,
      device_id: deviceId,
      status: 'pending',
      sent: 0,
      attempts: 0,
      error: null,
      created_at: Date.now(),
    });
  });

  const response = await writeRows(table, req, writes.length, puts, removals);
  const failed = new Set(Object.keys(response.failures).map(Number));
  const committedOps = ops.filter((_, i) => !failed.has(writes[i]!.index));
  const committedOpIds = new Set(committedOps.map((op) => op.op_id));
  const committedTombstones = newTombstones.filter((t) => committedOpIds.has(t.op_id));

  await stateTable.mutate({ trans, type: 'put', values: [{ key: STATE_KEYS.hlc, value: hlc }] });
  if (committedTombstones.length > 0) {
    await tombTable.mutate({ trans, type: 'put', values: dedupeLast(committedTombstones) });
  }
  const added = await appendToOutbox(down, trans, runtime, committedOps);
  if (committedOps.length > 0) {
    const coalesced = committedOps.length - added;
    (trans as unknown as IDBTransaction).addEventListener('complete', () => runtime.onCaptured(added, coalesced));
  }
  return response;
}

/** Expands any mutation into per-record writes (deletes get their keys resolved). */
async function collectWrites(
  table: DBCoreTable,
  synced: SyncedTable,
  req: DBCoreMutateRequest,
): Promise<LocalWrite[]> {
  switch (req.type) {
    case 'add':
    case 'put':
      return req.values.map((value: RecordPayload, index) => {
        const pk = value?.[synced.primaryKey];
        if (pk === undefined || pk === null || pk === '') {
          throw new CaptureError(`a row of ${synced.name} has no ${synced.primaryKey}`);
        }
        return { index, pk, value };
      });
    case 'delete':
      return req.keys.map((pk, index) => ({ index, pk, value: null }));
    case 'deleteRange': {
      const { result } = await table.query({
        trans: req.trans,
        values: false,
        query: { index: table.schema.primaryKey, range: req.range },
      });
      return result.map((pk, index) => ({ index, pk, value: null }));
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

/** Appends ops in order, coalescing never-sent ops per record above the soft limit. */
async function appendToOutbox(
  down: DBCore,
  trans: DBCoreTransaction,
  runtime: CaptureRuntime,
  ops: PendingOpRow[],
): Promise<number> {
  if (ops.length === 0) return 0;
  const outbox = down.table('pending_ops');
  if (runtime.pendingEstimate + ops.length <= runtime.outboxSoftLimit) {
    await outbox.mutate({ trans, type: 'add', values: ops });
    return ops.length;
  }
  const byRecord = outbox.schema.getIndexByKeyPath(['table_name', 'pk']);
  if (!byRecord) throw new CaptureError('pending_ops lacks its [table_name+pk] index');
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
