/**
 * Adoption: rows a database holds that were never captured (the app was used
 * before sync was switched on, the engine's own tables were lost, or an app
 * `upgrade()` rewrote them) become outbox ops, so the first rescan's swap
 * keeps them and the push sends them.
 *
 * It runs inside the bootstrap rescan, after the snapshot is staged and
 * before the swap, so each local row is judged against the server's version:
 * - the server lacks the record: the row is queued as a create (a delete when
 *   it is soft-deleted), with clock `(row.clock ?? 0) + 1`;
 * - both have it: last-writer-wins. The local row's stamp is its own `clock`
 *   (0 when it has none) and `hlc` (the empty string when it has none, which
 *   sorts below every real hlc, so an unstamped row loses a clock tie to the
 *   server). A local winner is queued with clock `max(local, server) + 1`; a
 *   server winner is left for the swap to apply. The same stamp with different
 *   content is a change nobody captured (an `upgrade()`): the local row wins;
 * - rows the table's `shouldSync` filter keeps local, and rows that already
 *   have an op, are left alone.
 * Each queued row gets the op's `clock`/`hlc` stamped on it. Nothing local is
 * deleted here; the swap afterwards replaces only rows that lost LWW.
 *
 * Batches of `batchSize` rows commit one by one with the progress (table and
 * last primary key) in the same transaction: a reload resumes after the last
 * committed batch, and `sync.adopt:action` reports each one.
 *
 * The queued ops are pushed while the scan goes on (`AdoptionPusher`: one push
 * in flight, started after a batch commits), so the server's time overlaps the
 * database's. A record whose op a push settled before the swap has no op left
 * for the swap to keep it by: the rescan hands the swap those records
 * (`AdoptionPusher.settled`), and it keeps them as they are locally unless the
 * staged version wins LWW.
 */
import { rowFromVersion, runRemoteTransaction, stampOf, recordKey, type RemoteVersion } from './apply.js';
import { pkToWire } from './capture/index.js';
import { chunkedBulkPut } from './chunked-write.js';
import { noteTombstones, readClockState, writeClockState } from './clock-state.js';
import type { EngineContext } from './context.js';
import { formatHlc, hlcSend, type HlcState, type RecordPayload, type Stamp } from '@or3/sync-protocol';
import { newOpId } from './ids.js';
import { winsOver } from './lww.js';
import { ADOPTED, newOp, outbox, type PendingOpRow } from './outbox/index.js';
import { noPushes, pushPending, type PushOutcome } from './push.js';
import { STATE_KEYS, STATE_TABLE, TOMBSTONES_TABLE, type SyncStateRow, type SyncedTable, type TombstoneRow } from './schema.js';
import { rowSyncs, toWirePayload } from './table-conventions.js';
import { sameJson } from './json-equal.js';

/** What the state table keeps of an adoption that is owed or under way. */
export interface AdoptionProgress {
  /** Table being scanned, in `syncedTables` order; null before the first batch. */
  table: string | null;
  /** Primary key of the last row scanned in `table`. */
  after: unknown;
  scanned: number;
  queued: number;
  /** Every table scanned; the swap that follows clears the record. */
  done: boolean;
}

/** The progress of an adoption that has not started yet. */
export function freshAdoption(): AdoptionProgress {
  return { table: null, after: null, scanned: 0, queued: 0, done: false };
}

/** The adoption this database owes, or null (inside or outside a transaction). */
export async function readAdoption(ctx: Pick<EngineContext, 'db'>): Promise<AdoptionProgress | null> {
  return adoptionFromRow(await ctx.db.table(STATE_TABLE).get(STATE_KEYS.adoption));
}

/** The adoption a `_or3sync_state` row (at `STATE_KEYS.adoption`) holds. */
export function adoptionFromRow(row: SyncStateRow | undefined): AdoptionProgress | null {
  const value = row?.value as AdoptionProgress | undefined;
  return value && typeof value === 'object' ? value : null;
}

/**
 * Adopts every synced table's rows against `staged` (the snapshot, by record
 * key), batch by batch. `holdLease` runs first in each batch's transaction
 * and throws when the rescan lost its lease.
 */
export async function adoptLocalRows(
  ctx: EngineContext,
  staged: Map<string, RemoteVersion>,
  holdLease: () => Promise<void>,
  batchSize: number,
  pusher: AdoptionPusher | null = null,
): Promise<void> {
  const first = await readAdoption(ctx);
  if (!first || first.done) return;
  const tables = [...ctx.runtime.tables.values()];
  let total = 0;
  for (const table of tables) total += await ctx.db.table(table.name).count();
  const emit = (phase: 'started' | 'progress' | 'finished', p: AdoptionProgress) =>
    ctx.events.emit('sync.adopt:action', { phase, tableName: p.table, scanned: p.scanned, queued: p.queued, total });
  emit('started', first);
  for (;;) {
    const progress = await runRemoteTransaction(ctx.db, ctx.runtime, [], async () => {
      await holdLease();
      const current = await readAdoption(ctx);
      if (!current || current.done) return current;
      const next = await adoptNextBatch(ctx, tables, current, staged, batchSize);
      await ctx.db.table(STATE_TABLE).put({ key: STATE_KEYS.adoption, value: next });
      return next;
    });
    if (!progress) return;
    pusher?.kick();
    emit(progress.done ? 'finished' : 'progress', progress);
    if (progress.done) break;
  }
  await ctx.refreshPendingEstimate();
}

/**
 * Pushes the outbox while an adoption queues it: `kick()` after a batch commits starts a push
 * pass unless one is running (one push in flight, PROTOCOL.md section 6); the pass goes on
 * until the outbox is empty or `stop()`. A pass that fails ends the overlap quietly: the run's
 * own push, after the swap, meets the same failure and handles it. `settled` holds the record
 * keys of every op that left the outbox (by `recordKey`), with their table and key;
 * `appliedVersions` the server versions of those the server applied.
 */
export class AdoptionPusher {
  readonly settled = new Map<string, { tableName: string; pk: string }>();
  readonly appliedVersions = new Set<number>();
  readonly outcome: PushOutcome = noPushes();
  private running: Promise<void> | null = null;
  private failed = false;
  private readonly abort = new AbortController();
  private readonly onAbort = () => this.abort.abort();

  constructor(
    private readonly ctx: EngineContext,
    private readonly signal?: AbortSignal,
  ) {
    if (signal?.aborted) this.abort.abort();
    else signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Starts a push pass unless one is running (or pushing stopped). */
  kick(): void {
    if (this.running || this.failed || this.abort.signal.aborted) return;
    const onSettled = (ops: PendingOpRow[], versions: number[]) => {
      for (const op of ops) this.settled.set(recordKey(op.table_name, op.pk), { tableName: op.table_name, pk: op.pk });
      for (const version of versions) this.appliedVersions.add(version);
    };
    const options = { onSettled, outcome: this.outcome, duringRescan: true };
    this.running = pushPending(this.ctx, this.abort.signal, null, options).then(
      () => {
        this.running = null;
      },
      () => {
        this.running = null;
        this.failed = true;
      },
    );
  }

  /** No push starts any more; resolves once the one in flight has settled. */
  async stop(): Promise<void> {
    this.signal?.removeEventListener('abort', this.onAbort);
    this.abort.abort();
    await this.running;
  }
}

/**
 * Adopts one table's rows against `staged` (the server's rows of that table), batch by batch
 * (a newly synced table's catch-up). Returns how many were queued. Rows that have an op are
 * left alone, so running it again after an interruption queues nothing twice.
 */
export async function adoptTable(ctx: EngineContext, table: SyncedTable, staged: Map<string, RemoteVersion>, batchSize: number): Promise<number> {
  let after: unknown = null;
  let queued = 0;
  for (;;) {
    const rows = await rowsAfter(ctx, table, after, batchSize);
    if (rows.length === 0) return queued;
    queued += await runRemoteTransaction(ctx.db, ctx.runtime, [], () => adoptRows(ctx, table, rows, staged));
    after = rows[rows.length - 1]![table.primaryKey];
  }
}

/** Scans the next batch after `progress` (moving on to the next table when one is exhausted). */
async function adoptNextBatch(
  ctx: EngineContext,
  tables: SyncedTable[],
  progress: AdoptionProgress,
  staged: Map<string, RemoteVersion>,
  batchSize: number,
): Promise<AdoptionProgress> {
  let index = progress.table === null ? 0 : tables.findIndex((t) => t.name === progress.table);
  // A table no longer synced (the app changed its declaration): start over, nothing is lost by rescanning.
  let after = index < 0 ? null : progress.after;
  if (index < 0) index = 0;
  for (; index < tables.length; index++, after = null) {
    const table = tables[index]!;
    const rows = await rowsAfter(ctx, table, after, batchSize);
    if (rows.length === 0) continue;
    const queued = await adoptRows(ctx, table, rows, staged);
    return {
      table: table.name,
      after: rows[rows.length - 1]![table.primaryKey],
      scanned: progress.scanned + rows.length,
      queued: progress.queued + queued,
      done: false,
    };
  }
  return { ...progress, done: true };
}

/** The next `limit` rows of `table` after primary key `after` (from the first when null). */
function rowsAfter(ctx: EngineContext, table: SyncedTable, after: unknown, limit: number): Promise<RecordPayload[]> {
  const rows = ctx.db.table(table.name);
  const collection = after === null ? rows.orderBy(':id') : rows.where(':id').above(after);
  return collection.limit(limit).toArray() as Promise<RecordPayload[]>;
}

/** Queues the rows of one batch that need it; returns how many. */
async function adoptRows(ctx: EngineContext, table: SyncedTable, rows: RecordPayload[], staged: Map<string, RemoteVersion>): Promise<number> {
  const pks = rows.map((row) => pkToWire(row[table.primaryKey]));
  const [withOps, clockState] = await Promise.all([outbox.recordsWithOps(ctx.db, table.name, pks), readClockState(ctx.db)]);
  let hlc: HlcState = { ms: clockState.ms, counter: clockState.counter };
  const deviceId = ctx.scope.deviceId;
  const now = ctx.runtime.now();
  const ops: PendingOpRow[] = [];
  const stamped: RecordPayload[] = [];
  const tombstones: TombstoneRow[] = [];
  rows.forEach((row, i) => {
    const pk = pks[i]!;
    if (withOps.has(pk) || !rowSyncs(table.conventions, row)) return;
    const clock = adoptedClock(table, row, staged.get(recordKey(table.name, pk)));
    if (clock === null) return;
    hlc = hlcSend(hlc, ctx.runtime.hlcNow());
    const stamp = formatHlc(hlc.ms, hlc.counter, deviceId);
    const isDelete = row.deleted === true;
    // The row as any device will hold it once applied from the wire (the sync fields a captured write has).
    const adopted: RecordPayload = { ...row, clock, hlc: stamp, deleted: isDelete, deleted_at: isDelete ? (row.deleted_at ?? null) : null };
    if (table.orderKey && typeof adopted.order_key !== 'string') adopted.order_key = stamp;
    const opId = newOpId();
    stamped.push(adopted);
    const operation = isDelete ? 'delete' : 'put';
    ops.push(newOp({ op_id: opId, table_name: table.name, operation, pk, payload: adopted, clock, hlc: stamp, device_id: deviceId }, now, ctx.runtime.userId, ADOPTED));
    if (isDelete) {
      tombstones.push({
        table_name: table.name,
        pk,
        clock,
        hlc: stamp,
        op_id: opId,
        deleted_at: typeof adopted.deleted_at === 'number' ? adopted.deleted_at : null,
        server_version: null,
        recorded_at: now,
      });
    }
  });
  if (ops.length === 0) return 0;
  // The writes go out together (IndexedDB runs them in order), the big ones in chunks so that no task clones a whole batch.
  const writes: Promise<unknown>[] = [chunkedBulkPut(ctx.db.table(table.name), stamped), outbox.appendOps(ctx.db, ops)];
  if (tombstones.length > 0) {
    writes.push(ctx.db.table(TOMBSTONES_TABLE).bulkPut(tombstones));
    noteTombstones(clockState, [table.name]);
  }
  writes.push(writeClockState(ctx.db, { ...clockState, ...hlc }));
  await Promise.all(writes);
  return ops.length;
}

/** The clock an adopted row is queued with, or null when the server's version stands (see the file comment). */
function adoptedClock(table: SyncedTable, row: RecordPayload, server: RemoteVersion | undefined): number | null {
  const local: Stamp = {
    clock: typeof row.clock === 'number' && Number.isFinite(row.clock) ? row.clock : 0,
    hlc: typeof row.hlc === 'string' ? row.hlc : '',
    op_id: null,
  };
  if (!server) return local.clock + 1;
  const remote = stampOf(server);
  if (local.clock === remote.clock && local.hlc === remote.hlc) {
    const expected = rowFromVersion(table, server, row);
    const same = expected !== null && sameJson(toWirePayload(table.conventions, expected), toWirePayload(table.conventions, row));
    return same ? null : remote.clock + 1;
  }
  if (!winsOver(local, remote)) return null;
  return Math.max(local.clock, remote.clock) + 1;
}
