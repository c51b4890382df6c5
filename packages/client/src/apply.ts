/**
 * Applying server versions to the local database: last-writer-wins against the
 * local row and its tombstone stamp, tombstones never live, HLC receive, all in
 * one transaction that capture ignores (PROTOCOL.md sections 2 and 6).
 */
import type { Collection, Dexie, Table, Transaction } from 'dexie';
import type { CaptureRuntime } from './capture/index.js';
import type { ConflictEvent } from './events.js';
import {
  compareStamps,
  hlcReceive,
  parseHlc,
  type Change,
  type HlcState,
  type RecordPayload,
  type SnapshotItem,
  type Stamp,
  type Winner,
} from '@or3/sync-protocol';
import { maxStamp, winsOver } from './lww.js';
import { copyClockState, noteTombstones, readClockState, writeClockState } from './clock-state.js';
import { outbox, type PendingOpRow } from './outbox/index.js';
import {
  CAPTURE_TABLES,
  TOMBSTONES_TABLE,
  type SyncedTable,
  type TombstoneRow,
} from './schema.js';
import { fromWirePayload } from './table-conventions.js';

/** One server version of a record, from a change, a snapshot item or a push winner. */
export interface RemoteVersion {
  table_name: string;
  pk: string;
  deleted: boolean;
  payload: RecordPayload | null;
  clock: number;
  hlc: string;
  op_id: string;
  server_version: number | null;
}

/** What an apply did. */
export interface ApplyOutcome {
  applied: number;
  conflicts: ConflictEvent[];
}

/** A pulled change as a version; a delete (or a put of a tombstone) is a tombstone. */
export function versionFromChange(change: Change): RemoteVersion {
  return {
    table_name: change.table_name,
    pk: change.pk,
    deleted: change.operation === 'delete' || change.payload?.deleted === true,
    payload: change.payload,
    clock: change.clock,
    hlc: change.hlc,
    op_id: change.op_id,
    server_version: change.server_version,
  };
}

/** A snapshot item (or a `records` answer) as a version. */
export function versionFromItem(item: SnapshotItem): RemoteVersion {
  return { ...item, deleted: item.deleted || item.payload?.deleted === true };
}

/** A push winner as a version of the op's record. */
export function versionFromWinner(tableName: string, pk: string, winner: Winner): RemoteVersion {
  return {
    table_name: tableName,
    pk,
    deleted: winner.deleted || winner.payload?.deleted === true,
    payload: winner.payload,
    clock: winner.clock,
    hlc: winner.hlc,
    op_id: winner.op_id,
    server_version: winner.server_version,
  };
}

export function stampOf(v: { clock: number; hlc: string; op_id: string | null }): Stamp {
  return { clock: v.clock, hlc: v.hlc, op_id: v.op_id };
}

/**
 * The local row a version becomes (for a hard-delete tombstone: null, no row): the wire
 * payload in the app's field names, with the local-only fields of `before` kept.
 */
export function rowFromVersion(table: SyncedTable, version: RemoteVersion, before?: RecordPayload): RecordPayload | null {
  const payload = version.payload && fromWirePayload(table.conventions, version.payload, before);
  if (version.deleted) {
    if (table.deletes === 'hard') return null;
    return {
      ...(payload ?? before ?? {}),
      [table.primaryKey]: version.pk,
      clock: version.clock,
      hlc: version.hlc,
      deleted: true,
      deleted_at: version.payload?.deleted_at ?? before?.deleted_at ?? null,
    };
  }
  return {
    ...(payload ?? {}),
    [table.primaryKey]: version.pk,
    clock: version.clock,
    hlc: version.hlc,
    deleted: false,
    deleted_at: null,
  };
}

/** The tombstone stamp a deleted version leaves. */
export function tombstoneFromVersion(version: RemoteVersion, recordedAt: number): TombstoneRow {
  return {
    table_name: version.table_name,
    pk: version.pk,
    clock: version.clock,
    hlc: version.hlc,
    op_id: version.op_id,
    deleted_at: typeof version.payload?.deleted_at === 'number' ? version.payload.deleted_at : null,
    server_version: version.server_version,
    recorded_at: recordedAt,
  };
}

/** Tables a remote transaction needs. */
export function remoteTransactionTables(tables: Map<string, SyncedTable>, extra: string[] = []): string[] {
  return [...tables.keys(), ...CAPTURE_TABLES, ...extra];
}

/**
 * Runs `fn` in a readwrite transaction whose writes capture ignores.
 * Dexie's transaction is handed over so callers can use the Table API.
 */
export function runRemoteTransaction<T>(
  db: Dexie,
  runtime: CaptureRuntime,
  extraTables: string[],
  fn: (tx: Transaction) => Promise<T>,
): Promise<T> {
  return db.transaction('rw', remoteTransactionTables(runtime.tables, extraTables), async (tx) => {
    runtime.remoteTransactions.add(tx.idbtrans);
    return fn(tx);
  });
}

/** The local state of one record, as LWW sees it. */
interface LocalRecord {
  row: RecordPayload | undefined;
  tombstone: TombstoneRow | undefined;
  /** Latest outbox op of the record (pending or failed). */
  pendingOp: PendingOpRow | undefined;
}

function localStampOf(record: LocalRecord): Stamp | null {
  const { row, tombstone, pendingOp } = record;
  let rowStamp: Stamp | null = null;
  if (row && typeof row.clock === 'number' && typeof row.hlc === 'string') {
    const opId =
      pendingOp?.hlc === row.hlc ? pendingOp.op_id : tombstone?.hlc === row.hlc ? tombstone.op_id : null;
    rowStamp = { clock: row.clock, hlc: row.hlc, op_id: opId };
  }
  return maxStamp(rowStamp, tombstone ? stampOf(tombstone) : null);
}

/**
 * Applies versions in order, each only if it wins LWW against the local row,
 * its tombstone and earlier versions of this call. Must run inside
 * `runRemoteTransaction`. Conflicts are returned, not emitted, so callers fire
 * them after commit. Versions at or below `appliedUpTo` (a read the caller
 * made in the same transaction, such as the stored cursor) are skipped.
 */
export async function applyRemoteVersions(
  db: Dexie,
  runtime: CaptureRuntime,
  versions: RemoteVersion[],
  appliedUpTo: Promise<number> = Promise.resolve(-Infinity),
): Promise<ApplyOutcome> {
  const outcome: ApplyOutcome = { applied: 0, conflicts: [] };
  const candidates = versions.filter((v) => runtime.tables.has(v.table_name));
  if (candidates.length === 0) return outcome;

  // Every read goes out at once: IndexedDB answers them in order, and each one awaited alone costs
  // a round trip to the browser's database process (P9: most of what a first sync waited on; P11:
  // a realtime frame's cursor read was one more before its records').
  const [locals, clockState, floor] = await Promise.all([
    loadLocalRecords(db, runtime.tables, candidates),
    readClockState(db),
    appliedUpTo,
  ]);
  const relevant = candidates.filter((v) => v.server_version === null || v.server_version > floor);
  if (relevant.length === 0) return outcome;
  let hlc: HlcState = { ms: clockState.ms, counter: clockState.counter };
  const rowWrites = new Map<string, Map<string, RecordPayload | null>>();
  const tombWrites = new Map<string, TombstoneRow>();

  for (const version of relevant) {
    const table = runtime.tables.get(version.table_name)!;
    const key = recordKey(version.table_name, version.pk);
    const local = locals.get(key)!;
    const localStamp = localStampOf(local);
    const remoteStamp = stampOf(version);
    try {
      const parsed = parseHlc(version.hlc);
      hlc = hlcReceive(hlc, parsed, runtime.hlcNow());
    } catch {
      // A server never sends an invalid stamp; if one does, it still orders bytewise.
    }
    // Our own earlier writes coming back are not conflicts with our later ones.
    const unpushed = isOwnWrite(version, runtime.deviceId) ? undefined : local.pendingOp;
    if (!winsOver(remoteStamp, localStamp)) {
      if (unpushed && localStamp && compareStamps(remoteStamp, localStamp) < 0) {
        outcome.conflicts.push(conflict(version, localStamp, 'local'));
      }
      continue;
    }
    if (unpushed && localStamp && localStamp.hlc === unpushed.hlc) {
      outcome.conflicts.push(conflict(version, localStamp, 'remote'));
    }
    const row = rowFromVersion(table, version, local.row);
    let tableWrites = rowWrites.get(table.name);
    if (!tableWrites) rowWrites.set(table.name, (tableWrites = new Map()));
    tableWrites.set(version.pk, row);
    local.row = row ?? undefined;
    if (version.deleted) {
      local.tombstone = tombstoneFromVersion(version, runtime.now());
      tombWrites.set(key, local.tombstone);
    }
    outcome.applied += 1;
  }

  // The writes go out together too, in the order they were awaited one by one before (IndexedDB
  // runs a transaction's requests in the order they are made).
  const writes: Promise<unknown>[] = [];
  for (const [tableName, tableWrites] of rowWrites) {
    const puts = [...tableWrites.values()].filter((row): row is RecordPayload => row !== null);
    const deletes = [...tableWrites.entries()].filter(([, row]) => row === null).map(([pk]) => pk);
    if (puts.length > 0) writes.push(chunkedBulkPut(db.table(tableName), puts));
    if (deletes.length > 0) writes.push(db.table(tableName).bulkDelete(deletes));
  }
  if (tombWrites.size > 0) writes.push(db.table(TOMBSTONES_TABLE).bulkPut([...tombWrites.values()]));
  noteTombstones(clockState, [...tombWrites.values()].map((t) => t.table_name));
  const written = { ...clockState, ...hlc };
  writes.push(writeClockState(db, written));
  await Promise.all(writes);
  runtime.lastClockState = copyClockState(written);
  return outcome;
}

/** Rows per put request group in `chunkedBulkPut`. */
const PUT_CHUNK = 250;

/**
 * `table.bulkPut(rows)` in chunks of `PUT_CHUNK`, two in flight: a chunk goes out when the one
 * before the previous is stored, so IndexedDB always has one queued while the main thread
 * clones the next, and no task clones more than one chunk (a 1000-row snapshot page in one
 * `bulkPut` is one task of up to 100-200 ms on a loaded machine). Same transaction, same
 * order; a failed chunk fails the call and so aborts the transaction.
 */
async function chunkedBulkPut(table: Table, rows: RecordPayload[]): Promise<void> {
  const inFlight: Promise<unknown>[] = [];
  for (let at = 0; at < rows.length; at += PUT_CHUNK) {
    if (inFlight.length >= 2) await inFlight.shift();
    const chunk = table.bulkPut(rows.slice(at, at + PUT_CHUNK));
    chunk.catch(() => {}); // awaited below (or above); a failure must not also surface as unhandled
    inFlight.push(chunk);
  }
  await Promise.all(inFlight);
}

async function loadLocalRecords(
  db: Dexie,
  tables: Map<string, SyncedTable>,
  versions: RemoteVersion[],
): Promise<Map<string, LocalRecord>> {
  const locals = new Map<string, LocalRecord>();
  const byTable = new Map<string, string[]>();
  for (const v of versions) {
    const key = recordKey(v.table_name, v.pk);
    if (locals.has(key)) continue;
    locals.set(key, { row: undefined, tombstone: undefined, pendingOp: undefined });
    let pks = byTable.get(v.table_name);
    if (!pks) byTable.set(v.table_name, (pks = []));
    pks.push(v.pk);
  }
  const local = (tableName: string, pk: string) => locals.get(recordKey(tableName, pk));
  // The rows, tombstones and outbox ops of every table are read at once (one round trip, not three per table).
  const reads: Promise<void>[] = [];
  for (const [tableName, pks] of byTable) {
    if (!tables.has(tableName)) continue;
    const primaryKey = tables.get(tableName)!.primaryKey;
    const [lower, upper] = keyBounds(pks);
    reads.push(
      readDense(
        db.table(tableName).where(':id').between(lower, upper, true, true),
        pks.length,
        () => db.table(tableName).bulkGet(pks),
      ).then((rows) => {
        for (const row of rows as (RecordPayload | undefined)[]) {
          const record = row && local(tableName, String(row[primaryKey]));
          if (record) record.row = row;
        }
      }),
      readDense(
        db.table(TOMBSTONES_TABLE).where(':id').between([tableName, lower], [tableName, upper], true, true),
        pks.length,
        () => db.table(TOMBSTONES_TABLE).bulkGet(pks.map((pk) => [tableName, pk])),
      ).then((tombstones) => {
        for (const t of tombstones as (TombstoneRow | undefined)[]) {
          const record = t && local(t.table_name, t.pk);
          if (record) record.tombstone = t;
        }
      }),
      readDense(
        outbox.opsInKeyRange(db, tableName, lower, upper),
        pks.length,
        () => outbox.opsOfRecords(db, tableName, pks),
      ).then((ops) => {
        for (const [key, op] of outbox.latestPerRecord(ops, (o) => recordKey(o.table_name, o.pk))) {
          const record = locals.get(key);
          if (record) record.pendingOp = op;
        }
      }),
    );
  }
  await Promise.all(reads);
  return locals;
}

/** The lowest and highest of `pks`. */
function keyBounds(pks: string[]): [string, string] {
  let lower = pks[0]!;
  let upper = pks[0]!;
  for (const pk of pks) {
    if (pk < lower) lower = pk;
    if (pk > upper) upper = pk;
  }
  return [lower, upper];
}

/**
 * What is stored in the key range of `count` records (`range`), read in one
 * request when the range holds few others, as for a snapshot page (sorted by
 * key) or a burst of new records; otherwise `perKey`. Callers match results
 * to records by key and ignore the others.
 */
async function readDense<T>(range: Collection, count: number, perKey: () => Promise<T[]>): Promise<T[]> {
  const limit = count * 2;
  const found = (await range.limit(limit + 1).toArray()) as T[];
  return found.length > limit ? perKey() : found;
}

function isOwnWrite(version: RemoteVersion, deviceId: string | null): boolean {
  return deviceId !== null && version.hlc.endsWith(`-${deviceId}`);
}

function conflict(version: RemoteVersion, local: Stamp, winner: 'local' | 'remote'): ConflictEvent {
  return { tableName: version.table_name, pk: version.pk, local, remote: stampOf(version), winner };
}

/** A map key for a record. */
export function recordKey(tableName: string, pk: string): string {
  return `${tableName}\u0000${pk}`;
}
