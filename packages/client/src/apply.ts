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
import {
  clockStateFromRow,
  clockStateRow,
  copyClockState,
  mayHoldTombstones,
  noteTombstones,
  readClockState,
  sameClockState,
  writeClockState,
  type ClockState,
} from './clock-state.js';
import { sameJson } from './json-equal.js';
import { outbox, type PendingOpRow } from './outbox/index.js';
import {
  CAPTURE_TABLES,
  STATE_KEYS,
  STATE_TABLE,
  TOMBSTONES_TABLE,
  type SyncStateRow,
  type SyncedTable,
  type TombstoneRow,
} from './schema.js';
import { fromWirePayload } from './table-conventions.js';
import { chunkedBulkPut, chunkedBulkPuts } from './chunked-write.js';

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
  // Field by field, not a spread: one object shape for every version (a first sync makes one per record).
  return {
    table_name: item.table_name,
    pk: item.pk,
    deleted: item.deleted || item.payload?.deleted === true,
    payload: item.payload,
    clock: item.clock,
    hlc: item.hlc,
    op_id: item.op_id,
    server_version: item.server_version,
  };
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
  const candidates = versions.filter((v) => runtime.tables.has(v.table_name));
  if (candidates.length === 0) return { applied: 0, conflicts: [] };

  // Every read goes out at once: IndexedDB answers them in order, and each one awaited alone costs
  // a round trip to the browser's database process (P9: most of what a first sync waited on; P11:
  // a realtime frame's cursor read was one more before its records').
  const [locals, clockState, floor] = await Promise.all([
    loadLocalRecords(db, runtime.tables, candidates, 'dense'),
    readClockState(db),
    appliedUpTo,
  ]);
  const relevant = candidates.filter((v) => v.server_version === null || v.server_version > floor);
  if (relevant.length === 0) return { applied: 0, conflicts: [] };
  const plan = planApply(runtime, relevant, locals);
  // The writes go out together too, in the order they were awaited one by one before (IndexedDB
  // runs a transaction's requests in the order they are made).
  const tombstoneTables = [...plan.tombWrites.values()].map((t) => t.table_name);
  await Promise.all([...issueWrites(db, plan), writeClock(db, runtime, clockState, relevant, tombstoneTables)]);
  return plan.outcome;
}

/**
 * `applyRemoteVersions` for a realtime frame of a few changes, with its cursor (`cursor.key` moved
 * to `cursor.to`), in one round of requests when foresight holds: the reads of the records' local
 * state, of the clock state and of the cursor go out, then at once, without waiting for their
 * answers, the writes of another device's versions as if this device held no state of their
 * records, the cursor, and the clock state received from the one this tab last wrote
 * (`runtime.lastClockState`). IndexedDB runs a transaction's requests in the order they are made,
 * so the reads see the state before these writes. Once they answer, whatever the foresight got
 * wrong is written again in the same transaction, as `applyRemoteVersions` would have written it:
 * records with local state (LWW against the row, its tombstone and its pending op; the local row
 * put back where it wins), this device's own versions (never written ahead: they come back to a
 * row that has them), a clock state another tab moved. No other transaction sees the writes in
 * between. Returns the cursor as it was before (0 when none was stored): the caller rolls the
 * transaction back when that is not where the frame starts. Only for versions `mayApplyAhead`
 * takes. Must run inside `runRemoteTransaction`. P11: a frame's apply waited for its reads before
 * its writes went out, a round trip to the browser's database process.
 */
export async function applyRemoteVersionsAhead(
  db: Dexie,
  runtime: CaptureRuntime,
  versions: RemoteVersion[],
  cursor: { key: string; to: number },
): Promise<{ outcome: ApplyOutcome; cursorBefore: number }> {
  const candidates = versions.filter((v) => runtime.tables.has(v.table_name));
  const foreseenClock = runtime.lastClockState!;
  const others = candidates.filter((v) => !isOwnWrite(v, runtime.deviceId));
  const ahead = planApply(runtime, others, emptyLocals(others));
  // Issued before any write of this call, per key: never a read chosen by another's answer. A
  // table the clock state this tab last saw names no tombstones of is not asked for them when
  // nothing here writes one (a stale guess is read again below, still before any tombstone write).
  const tombstonesOf = (tableName: string) => ahead.tombWrites.size > 0 || mayHoldTombstones(foreseenClock, tableName);
  const state = db.table(STATE_TABLE);
  const reads = Promise.all([loadLocalRecords(db, runtime.tables, candidates, 'keys', tombstonesOf), state.bulkGet([STATE_KEYS.hlc, cursor.key])]);
  reads.catch(() => {}); // awaited below; a failure aborts the transaction either way
  const now = runtime.hlcNow();
  const aheadTombstoneTables = [...ahead.tombWrites.values()].map((t) => t.table_name);
  const aheadClock = receivedClock(foreseenClock, candidates, aheadTombstoneTables, now);
  const written = [...issueWrites(db, ahead, true), state.bulkPut([clockStateRow(aheadClock), { key: cursor.key, value: cursor.to }])];
  const [locals, [clockRow, cursorRow]] = await reads;
  const storedClock = clockStateFromRow(clockRow as SyncStateRow | undefined);
  const unread = candidates.filter((v) => !tombstonesOf(v.table_name) && mayHoldTombstones(storedClock, v.table_name));
  if (unread.length > 0) await readTombstones(db, unread, locals);
  // The state read, before the plan below moves `locals` on.
  const before = new Map([...locals].map(([key, local]) => [key, { row: local.row ?? null, tombstone: local.tombstone ?? null }]));
  // What `applyRemoteVersions` decides against the state read; the records without local state
  // that only other devices wrote are decided already, and written.
  const plan = planApply(runtime, candidates, locals);
  const fixes: Promise<unknown>[] = [];
  const rows = new Map<string, RecordPayload | null>();
  for (const [tableName, tableWrites] of plan.rowWrites) for (const [pk, row] of tableWrites) rows.set(recordKey(tableName, pk), row);
  const done = new Set<string>();
  for (const version of candidates) {
    const key = recordKey(version.table_name, version.pk);
    if (done.has(key)) continue;
    done.add(key);
    const held = before.get(key)!;
    const aheadRow = ahead.rowWrites.get(version.table_name)?.get(version.pk);
    // The state this record must end in (what the plan wrote, else what it held), against what it holds now.
    const row = rows.has(key) ? rows.get(key)! : held.row;
    const tombstone = plan.tombWrites.get(key) ?? held.tombstone;
    if (!sameJson(aheadRow === undefined ? held.row : aheadRow, row)) {
      const table = db.table(version.table_name);
      fixes.push(row ? table.put(row) : table.delete(version.pk));
    }
    if (!sameJson(ahead.tombWrites.get(key) ?? held.tombstone, tombstone)) {
      const tombstones = db.table(TOMBSTONES_TABLE);
      fixes.push(tombstone ? tombstones.put(tombstone) : tombstones.delete([version.table_name, version.pk]));
    }
  }
  const tombstoneTables = [...aheadTombstoneTables, ...[...plan.tombWrites.values()].map((t) => t.table_name)];
  const clock = receivedClock(storedClock, candidates, tombstoneTables, now);
  if (!sameClockState(clock, aheadClock)) fixes.push(writeClockState(db, clock));
  await Promise.all([...written, ...fixes]);
  runtime.lastClockState = copyClockState(clock);
  const cursorBefore = (cursorRow as SyncStateRow | undefined)?.value;
  return { outcome: plan.outcome, cursorBefore: typeof cursorBefore === 'number' ? cursorBefore : 0 };
}

/**
 * Whether `applyRemoteVersionsAhead` takes `versions`: a few of synced tables, the clock state
 * foreseeable, and at least one another device wrote. A frame of this device's own writes only
 * (the echo of its pushes) has nothing to write ahead, and usually meets a cursor its push's
 * settle already moved past it (`pastOwnChanges`): tried ahead, it would roll back and be
 * applied again the usual way, two transactions for a frame that changes nothing.
 */
export function mayApplyAhead(runtime: CaptureRuntime, versions: RemoteVersion[]): boolean {
  const candidates = versions.filter((v) => runtime.tables.has(v.table_name));
  return (
    candidates.length > 0 &&
    candidates.length <= AHEAD_MAX_VERSIONS &&
    runtime.lastClockState !== null &&
    candidates.some((v) => !isOwnWrite(v, runtime.deviceId))
  );
}

/**
 * `applyRemoteVersions` for a database that was empty when its rescan began (a first sync):
 * the reads of the records' local state go out first, then, without waiting for their
 * answers, every version is written as if nothing local existed; once the reads answer, the
 * records that did have local state (a write the user made during the first sync) are written
 * again, in the same transaction, as LWW decides: the local row and tombstone put back where
 * they win, the server's version with the local row's local-only fields where it wins.
 * IndexedDB runs a transaction's requests in the order they are made, so the reads see the
 * state before these writes and the last write of a record is LWW's; no other transaction sees
 * the writes in between. The main thread thus starts cloning rows at once instead of after a
 * round trip to the database process. Must run inside `runRemoteTransaction`.
 */
export async function applyRemoteVersionsWriteAhead(db: Dexie, runtime: CaptureRuntime, ahead: WriteAheadPlan): Promise<ApplyOutcome> {
  const { versions: candidates, blind } = ahead;
  if (candidates.length === 0) return { applied: 0, conflicts: [] };
  // Issued before any write of this call (the reads must not see them): whole ranges, never a
  // second read chosen by the first one's answer, which would come after the writes.
  const reads = Promise.all([loadLocalRecords(db, runtime.tables, candidates, 'whole'), readClockState(db)]);
  reads.catch(() => {}); // awaited below; a failure aborts the transaction either way
  await Promise.all(issueWrites(db, blind));
  const [locals, clockState] = await reads;
  const before = new Map<string, { row: RecordPayload | undefined; tombstone: TombstoneRow | undefined }>();
  for (const [key, local] of locals) {
    if (local.row || local.tombstone || local.pendingOp) before.set(key, { row: local.row, tombstone: local.tombstone });
  }
  // A version's decision depends only on its own record: the records without local state were
  // decided by the blind pass, only the others are decided again.
  const touched = candidates.filter((v) => before.has(recordKey(v.table_name, v.pk)));
  const plan = planApply(runtime, touched, locals);
  const corrections: Promise<unknown>[] = [];
  for (const version of touched) {
    const key = recordKey(version.table_name, version.pk);
    const local = before.get(key);
    if (!local) continue; // written once per record
    before.delete(key);
    const table = db.table(version.table_name);
    const wrote = plan.rowWrites.get(version.table_name);
    const row = wrote?.has(version.pk) ? wrote.get(version.pk)! : (local.row ?? null);
    corrections.push(row ? table.put(row) : table.delete(version.pk));
    const tombstone = plan.tombWrites.get(key) ?? local.tombstone;
    corrections.push(tombstone ? db.table(TOMBSTONES_TABLE).put(tombstone) : db.table(TOMBSTONES_TABLE).delete([version.table_name, version.pk]));
  }
  const tombstoneTables = [...blind.tombWrites.values(), ...plan.tombWrites.values()].map((t) => t.table_name);
  await Promise.all([...corrections, writeClock(db, runtime, clockState, candidates, tombstoneTables)]);
  const blindTouched = planApply(runtime, touched, emptyLocals(touched)).outcome.applied;
  return { applied: blind.outcome.applied - blindTouched + plan.outcome.applied, conflicts: plan.outcome.conflicts };
}

/**
 * Versions ready for `applyRemoteVersionsWriteAhead`: those of synced tables, with the writes
 * they make into a database without local state, planned before the transaction (a page is
 * planned when it arrives, while the pages before it are being written).
 */
export interface WriteAheadPlan {
  versions: RemoteVersion[];
  blind: ApplyPlan;
}

/** Plans `versions` for `applyRemoteVersionsWriteAhead`. */
export function planWriteAhead(runtime: CaptureRuntime, versions: RemoteVersion[]): WriteAheadPlan {
  const candidates = versions.filter((v) => runtime.tables.has(v.table_name));
  return { versions: candidates, blind: planBlind(runtime, candidates) };
}

/**
 * `planApply` against no local state, without its per-record bookkeeping: with nothing local,
 * every version wins and becomes its row (and its tombstone), unless an earlier version of the
 * same record came in the same batch, which a snapshot never sends; then `planApply` decides.
 */
function planBlind(runtime: CaptureRuntime, versions: RemoteVersion[]): ApplyPlan {
  const plan: ApplyPlan = { rowWrites: new Map(), tombWrites: new Map(), outcome: { applied: 0, conflicts: [] } };
  for (const version of versions) {
    const table = runtime.tables.get(version.table_name)!;
    let tableWrites = plan.rowWrites.get(table.name);
    if (!tableWrites) plan.rowWrites.set(table.name, (tableWrites = new Map()));
    if (tableWrites.has(version.pk)) return planApply(runtime, versions, emptyLocals(versions));
    tableWrites.set(version.pk, rowFromVersion(table, version));
    if (version.deleted) plan.tombWrites.set(recordKey(version.table_name, version.pk), tombstoneFromVersion(version, runtime.now()));
  }
  plan.outcome.applied = versions.length;
  return plan;
}

/** The plans of consecutive batches as one, as if their versions had been planned together. */
export function joinWriteAheadPlans(runtime: CaptureRuntime, plans: WriteAheadPlan[]): WriteAheadPlan {
  if (plans.length === 1) return plans[0]!;
  const versions = plans.flatMap((plan) => plan.versions);
  const blind: ApplyPlan = { rowWrites: new Map(), tombWrites: new Map(), outcome: { applied: 0, conflicts: [] } };
  let writes = 0;
  for (const plan of plans) {
    for (const [tableName, tableWrites] of plan.blind.rowWrites) {
      let joined = blind.rowWrites.get(tableName);
      if (!joined) blind.rowWrites.set(tableName, (joined = new Map()));
      for (const [pk, row] of tableWrites) joined.set(pk, row);
      writes += tableWrites.size;
    }
    for (const [key, tombstone] of plan.blind.tombWrites) blind.tombWrites.set(key, tombstone);
    blind.outcome.applied += plan.blind.outcome.applied;
  }
  let joinedWrites = 0;
  for (const tableWrites of blind.rowWrites.values()) joinedWrites += tableWrites.size;
  // A record in two of them (a snapshot has none): LWW between its versions, as one plan would.
  if (joinedWrites !== writes) return planWriteAhead(runtime, versions);
  return { versions, blind };
}

/** What an apply writes, as LWW decides against `locals`. */
interface ApplyPlan {
  /** Per table, per primary key: the row to put, or null to delete. */
  rowWrites: Map<string, Map<string, RecordPayload | null>>;
  tombWrites: Map<string, TombstoneRow>;
  outcome: ApplyOutcome;
}

/** Decides each version in order against `locals`, which it updates as versions win. */
function planApply(runtime: CaptureRuntime, versions: RemoteVersion[], locals: Map<string, LocalRecord>): ApplyPlan {
  const plan: ApplyPlan = { rowWrites: new Map(), tombWrites: new Map(), outcome: { applied: 0, conflicts: [] } };
  for (const version of versions) {
    const table = runtime.tables.get(version.table_name)!;
    const key = recordKey(version.table_name, version.pk);
    const local = locals.get(key)!;
    const localStamp = localStampOf(local);
    const remoteStamp = stampOf(version);
    // Our own earlier writes coming back are not conflicts with our later ones.
    const unpushed = isOwnWrite(version, runtime.deviceId) ? undefined : local.pendingOp;
    if (!winsOver(remoteStamp, localStamp)) {
      if (unpushed && localStamp && compareStamps(remoteStamp, localStamp) < 0) {
        plan.outcome.conflicts.push(conflict(version, localStamp, 'local'));
      }
      continue;
    }
    if (unpushed && localStamp && localStamp.hlc === unpushed.hlc) {
      plan.outcome.conflicts.push(conflict(version, localStamp, 'remote'));
    }
    const row = rowFromVersion(table, version, local.row);
    let tableWrites = plan.rowWrites.get(table.name);
    if (!tableWrites) plan.rowWrites.set(table.name, (tableWrites = new Map()));
    tableWrites.set(version.pk, row);
    local.row = row ?? undefined;
    if (version.deleted) {
      local.tombstone = tombstoneFromVersion(version, runtime.now());
      plan.tombWrites.set(key, local.tombstone);
    }
    plan.outcome.applied += 1;
  }
  return plan;
}

/**
 * The plan's row and tombstone writes, in order: in chunks (`chunked-write.ts`), or with `atOnce`
 * every request issued before this returns (a few rows, written ahead of reads' answers).
 */
function issueWrites(db: Dexie, plan: ApplyPlan, atOnce = false): Promise<unknown>[] {
  const writes: Promise<unknown>[] = [];
  const puts: [Table, RecordPayload[]][] = [];
  for (const [tableName, tableWrites] of plan.rowWrites) {
    const rows = [...tableWrites.values()].filter((row): row is RecordPayload => row !== null);
    const deletes = [...tableWrites.entries()].filter(([, row]) => row === null).map(([pk]) => pk);
    if (rows.length > 0) puts.push([db.table(tableName), rows]);
    if (deletes.length > 0) writes.push(db.table(tableName).bulkDelete(deletes));
  }
  const tombstones = [...plan.tombWrites.values()];
  if (atOnce) {
    for (const [table, rows] of puts) writes.push(table.bulkPut(rows));
    if (tombstones.length > 0) writes.push(db.table(TOMBSTONES_TABLE).bulkPut(tombstones));
    return writes;
  }
  if (puts.length > 0) writes.push(chunkedBulkPuts(puts));
  if (tombstones.length > 0) writes.push(chunkedBulkPut(db.table(TOMBSTONES_TABLE), tombstones));
  return writes;
}

/** Most versions `applyRemoteVersionsAhead` writes ahead (a realtime frame's few; a page goes the usual way). */
const AHEAD_MAX_VERSIONS = 64;

/** HLC receive of every version (whether it won or not), and the tables given tombstones; written back. */
async function writeClock(db: Dexie, runtime: CaptureRuntime, clockState: ClockState, versions: RemoteVersion[], tombstoneTables: string[]): Promise<void> {
  const written = receivedClock(clockState, versions, tombstoneTables, runtime.hlcNow());
  await writeClockState(db, written);
  runtime.lastClockState = copyClockState(written);
}

/** The clock state after HLC receive of every version at wall time `now`, naming `tombstoneTables` (a new object). */
function receivedClock(clockState: ClockState, versions: RemoteVersion[], tombstoneTables: string[], now: number): ClockState {
  let hlc: HlcState = { ms: clockState.ms, counter: clockState.counter };
  for (const version of versions) {
    try {
      hlc = hlcReceive(hlc, parseHlc(version.hlc), now);
    } catch {
      // A server never sends an invalid stamp; if one does, it still orders bytewise.
    }
  }
  const received = copyClockState(clockState);
  noteTombstones(received, tombstoneTables);
  return { ...received, ...hlc };
}

/** Every record of `versions` with no local state. */
function emptyLocals(versions: RemoteVersion[]): Map<string, LocalRecord> {
  const locals = new Map<string, LocalRecord>();
  for (const v of versions) locals.set(recordKey(v.table_name, v.pk), { row: undefined, tombstone: undefined, pendingOp: undefined });
  return locals;
}

/**
 * How `loadLocalRecords` reads a key range: `dense` with a limit, falling back to per-key reads
 * when the range holds many other records; `whole` in one request per store, all issued before
 * the call returns (a fallback read would be issued after whatever the caller issues next);
 * `keys` per key, all issued before the call returns (a few records far apart).
 */
type RangeRead = 'dense' | 'whole' | 'keys';

async function loadLocalRecords(
  db: Dexie,
  tables: Map<string, SyncedTable>,
  versions: RemoteVersion[],
  mode: RangeRead,
  /** Tables whose tombstones are read (all by default). */
  tombstonesOf: (tableName: string) => boolean = () => true,
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
  const read = <T>(range: () => Collection, count: number, perKey: () => Promise<T[]>): Promise<T[]> =>
    mode === 'dense' ? readDense(range(), count, perKey) : mode === 'keys' ? perKey() : (range().toArray() as Promise<T[]>);
  // The rows, tombstones and outbox ops of every table are read at once (one round trip, not three per table).
  const reads: Promise<void>[] = [];
  for (const [tableName, pks] of byTable) {
    if (!tables.has(tableName)) continue;
    const primaryKey = tables.get(tableName)!.primaryKey;
    const [lower, upper] = keyBounds(pks);
    reads.push(
      read(
        () => db.table(tableName).where(':id').between(lower, upper, true, true),
        pks.length,
        () => db.table(tableName).bulkGet(pks),
      ).then((rows) => {
        for (const row of rows as (RecordPayload | undefined)[]) {
          const record = row && local(tableName, String(row[primaryKey]));
          if (record) record.row = row;
        }
      }),
      read(
        () => outbox.opsInKeyRange(db, tableName, lower, upper),
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
  for (const [tableName, pks] of byTable) {
    if (!tables.has(tableName) || !tombstonesOf(tableName)) continue;
    const [lower, upper] = keyBounds(pks);
    reads.push(
      read(
        () => db.table(TOMBSTONES_TABLE).where(':id').between([tableName, lower], [tableName, upper], true, true),
        pks.length,
        () => db.table(TOMBSTONES_TABLE).bulkGet(pks.map((pk) => [tableName, pk])),
      ).then((tombstones) => noteTombstonesRead(locals, tombstones as (TombstoneRow | undefined)[])),
    );
  }
  await Promise.all(reads);
  return locals;
}

/** Reads the tombstones of `versions`' records into `locals`, per key. */
async function readTombstones(db: Dexie, versions: RemoteVersion[], locals: Map<string, LocalRecord>): Promise<void> {
  const keys = [...new Set(versions.map((v) => recordKey(v.table_name, v.pk)))].map((key) => key.split('\u0000'));
  noteTombstonesRead(locals, (await db.table(TOMBSTONES_TABLE).bulkGet(keys)) as (TombstoneRow | undefined)[]);
}

function noteTombstonesRead(locals: Map<string, LocalRecord>, tombstones: (TombstoneRow | undefined)[]): void {
  for (const t of tombstones) {
    const record = t && locals.get(recordKey(t.table_name, t.pk));
    if (record) record.tombstone = t;
  }
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
