/**
 * Rescan (PROTOCOL.md section 6): page through the snapshot of the scope and
 * replace the local state with it, keeping pending local writes that win.
 *
 * Into an empty database the pages go straight in. Otherwise they are staged
 * in `_or3sync_staging` and swapped into the live tables in one transaction, so a
 * `liveQuery` sees the old state and then the new one, never a half state.
 * The caller (the engine) keeps the push loop paused meanwhile and pulls from
 * the returned `snapshotVersion` afterwards.
 *
 * The swap replaces whole tables: with a project scope, the local database
 * holds that project's threads and messages only (plus pending writes).
 *
 * Tabs share the database and its staging table, and without Web Locks more
 * than one may rescan: a rescan holds a lease in `_or3sync_state`, renewed with
 * every page it writes and checked in the swap, so one tab never swaps in a
 * staging table another tab cleared or filled. A tab that finds the lease
 * held fails its run with `rescan_busy` and retries later. A tab that closes
 * while its rescan is still waiting on the network gives the lease back
 * (`releaseRescanLease`), so the tab that opens next (a reload) rescans at
 * once instead of waiting for the lease to go stale.
 */
import type { Table } from 'dexie';
import {
  applyRemoteVersionsWriteAhead,
  joinWriteAheadPlans,
  planWriteAhead,
  recordKey,
  rowFromVersion,
  runRemoteTransaction,
  stampOf,
  tombstoneFromVersion,
  versionFromItem,
  type RemoteVersion,
  type WriteAheadPlan,
} from './apply.js';
import { AdoptionPusher, adoptLocalRows, readAdoption } from './adopt.js';
import { pkToWire } from './capture/index.js';
import { readClockState, writeClockState } from './clock-state.js';
import { newOpId } from './ids.js';
import { isSyncProviderError } from './provider.js';
import type { EngineContext } from './context.js';
import type { ConflictEvent, RescanReason } from './events.js';
import { maxStamp, winsOver } from './lww.js';
import { noPushes, pastOwnChanges, type PushOutcome } from './push.js';
import type { RecordPayload, SnapshotPage, Stamp } from '@or3/sync-protocol';
import { OUTBOX_SCOPE, outbox, type PendingOpRow } from './outbox/index.js';
import { EngineRunError } from './run-end.js';
import {
  STAGING_TABLE,
  STATE_KEYS,
  STATE_TABLE,
  TOMBSTONES_TABLE,
  type StagedItemRow,
  type StagedPageRow,
  type SyncStateRow,
  type TombstoneRow,
} from './schema.js';
import { sameJson } from './json-equal.js';
import { rowSyncs } from './table-conventions.js';

/** What a rescan did. */
export interface RescanOutcome {
  snapshotVersion: number;
  /**
   * The cursor stored: `snapshotVersion`, or past it when the versions right after it are
   * this device's own changes, pushed during the rescan (`pastOwnChanges`): the pull starts here.
   */
  cursor: number;
  items: number;
  conflicts: ConflictEvent[];
  /** True when pages were staged and swapped, false when written straight in. */
  staged: boolean;
  /** What was pushed during the rescan (an adoption's ops, pushed while it queued them). */
  pushed: PushOutcome;
}

/**
 * Tries of one snapshot page that failed with a retryable error (network, 5xx, 429) before the
 * rescan fails: a page retried in place keeps the pages before it, where failing the run started
 * the rescan over from the first page (under a fifth of requests failing, a rescan of 40 pages
 * then almost never finished). Waits follow the engine's backoff, at most `PAGE_RETRY_MAX_WAIT_MS`.
 */
export const PAGE_ATTEMPTS = 4;

/** Snapshot pages fetched ahead of the one being written, and the most written in one transaction of a bootstrap. */
const READ_AHEAD_PAGES = 2;
const PAGE_RETRY_MAX_WAIT_MS = 2000;

/** A rescan lease left by a tab that made no progress this long (closed mid-rescan) may be taken over. */
export const RESCAN_LEASE_MS = 30_000;

/** The lease a rescan holds while it writes staging or live tables. */
interface RescanLease {
  owner: string;
  at: number;
}

/** A fresh owner for `rescanScope`'s lease. */
export function rescanOwner(): string {
  return newOpId();
}

/**
 * Runs a rescan of the engine's scope and stores `snapshot_version` as the
 * cursor, holding the lease as `owner`. Throws `rescan_busy` when another tab of the device is rescanning.
 * An adoption's pushes during the rescan stop when `signal` aborts (the engine's `stop()`).
 */
export async function rescanScope(ctx: EngineContext, reason: RescanReason, owner: string, signal?: AbortSignal): Promise<RescanOutcome> {
  if (!(await takeLease(ctx, owner))) {
    throw new EngineRunError('rescan_busy', 'another tab is rescanning this workspace');
  }
  try {
    ctx.events.emit('sync.rescan:action', { phase: 'started', reason });
    const first = await snapshotPage(ctx, null);
    if (typeof first.server_time === 'number') ctx.observeServerTime(first.server_time);
    const snapshotVersion = first.snapshot_version;
    const direct = await isEmpty(ctx);
    const outcome: RescanOutcome = { snapshotVersion, cursor: snapshotVersion, items: 0, conflicts: [], staged: !direct, pushed: noPushes() };

    // The next pages are fetched, parsed and (into an empty database) planned while the ones in hand
    // are written: a bootstrap waits on the network or on IndexedDB, not on both. Into an empty
    // database every page in hand goes into one transaction (fewer commits); only its plan is kept.
    const reader = new SnapshotReader(ctx, first, READ_AHEAD_PAGES, (page) => ({
      items: page.items.length,
      page: direct ? null : page,
      plan: direct ? planWriteAhead(ctx.runtime, page.items.map(versionFromItem)) : null,
    }));
    try {
      for (let pageNumber = 0; ; ) {
        const pages = await reader.take(direct ? READ_AHEAD_PAGES : 1);
        if (pages.length === 0) break;
        for (const { items } of pages) outcome.items += items;
        if (direct) await writeDirect(ctx, owner, joinWriteAheadPlans(ctx.runtime, pages.map((p) => p.plan!)), outcome);
        else await stagePage(ctx, owner, pages[0]!.page!, pageNumber++);
      }
    } finally {
      reader.stop();
    }

    if (direct) {
      await runRemoteTransaction(ctx.db, ctx.runtime, [], async () => {
        await holdLease(ctx, owner);
        await ctx.db.table(STATE_TABLE).put({ key: ctx.cursorKey, value: snapshotVersion });
        await ctx.db.table(STATE_TABLE).delete(STATE_KEYS.rescanOwed(ctx.cursorKey));
        // An empty database had nothing to adopt.
        await ctx.db.table(STATE_TABLE).delete(STATE_KEYS.adoption);
        await ctx.db.table(STATE_TABLE).delete(STATE_KEYS.catchUp);
      });
    } else {
      // The adopted ops are pushed while the adoption queues them; the swap keeps the records those
      // pushes settled (they have no op left to keep them by).
      const pusher = (await readAdoption(ctx)) ? new AdoptionPusher(ctx, signal) : null;
      if (pusher) {
        try {
          await adoptLocalRows(ctx, await readStagedVersions(ctx), () => holdLease(ctx, owner), ctx.settings.adoptBatchSize, pusher);
        } finally {
          await pusher.stop();
        }
        outcome.pushed = pusher.outcome;
      }
      // The versions right after the snapshot that are this device's own pushes need no pull.
      if (pusher && ctx.scope.projectId == null) outcome.cursor = pastOwnChanges(snapshotVersion, pusher.appliedVersions);
      outcome.conflicts.push(...(await swapStaged(ctx, owner, outcome.cursor, pusher?.settled ?? new Map())));
    }
    ctx.events.emit('sync.rescan:action', { phase: 'finished', reason, snapshotVersion, items: outcome.items });
    return outcome;
  } finally {
    await releaseRescanLease(ctx, owner).catch(() => {});
  }
}

/** One snapshot page, retried in place on a retryable failure (`PAGE_ATTEMPTS`). */
async function snapshotPage(ctx: EngineContext, pageToken: string | null): Promise<SnapshotPage> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await ctx.provider.snapshot(ctx.scope, pageToken);
    } catch (error) {
      if (attempt >= PAGE_ATTEMPTS || !isSyncProviderError(error) || !error.retryable) throw error;
      const backoff = Math.min(ctx.settings.backoff.baseMs * 2 ** (attempt - 1), ctx.settings.backoff.maxMs);
      await new Promise((resolve) => setTimeout(resolve, Math.min(error.retryAfterMs ?? backoff, PAGE_RETRY_MAX_WAIT_MS)));
    }
  }
}

/**
 * Snapshot pages fetched ahead of the writer, one request at a time (each page names the next),
 * at most `depth` held: the heap holds those and the pages being written, whatever the snapshot's size.
 */
class SnapshotReader<T> {
  private readonly ready: T[] = [];
  private token: string | null;
  private fetching = false;
  private failure: { error: unknown } | null = null;
  private wake: (() => void) | null = null;
  private stopped = false;

  constructor(
    private readonly ctx: EngineContext,
    first: SnapshotPage,
    private readonly depth: number,
    /** What is kept of a page, made as it arrives. */
    private readonly prepare: (page: SnapshotPage) => T,
  ) {
    this.ready.push(prepare(first));
    this.token = first.next_page_token ?? null;
    this.fill();
  }

  /** Up to `max` pages: those fetched by now, else the next one when it comes; none after the last. */
  async take(max: number): Promise<T[]> {
    while (this.ready.length === 0) {
      if (this.failure) throw this.failure.error;
      if (!this.fetching) return [];
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    const pages = this.ready.splice(0, max);
    this.fill();
    return pages;
  }

  /** Fetches no further page (the rescan ended or failed). */
  stop(): void {
    this.stopped = true;
  }

  private fill(): void {
    if (this.stopped || this.fetching || this.token === null || this.failure || this.ready.length >= this.depth) return;
    this.fetching = true;
    // A page is planned in a task of its own, not in the one that parsed it: at 1,000 items each
    // took 100-250 ms on a loaded machine, and together they made the first sync's longest tasks.
    snapshotPage(this.ctx, this.token).then(
      async (page) => {
        await nextTask();
        this.token = page.next_page_token ?? null;
        try {
          this.ready.push(this.prepare(page));
        } catch (error) {
          this.failure = { error };
        }
        this.settled();
      },
      (error: unknown) => {
        this.failure = { error };
        this.settled();
      },
    );
  }

  private settled(): void {
    this.fetching = false;
    this.wake?.();
    this.wake = null;
    this.fill();
  }
}

/** Resolves in a later task (a `MessageChannel` message; a timer where there is none), never a microtask. */
function nextTask(): Promise<void> {
  if (typeof MessageChannel === 'undefined') return new Promise((resolve) => setTimeout(resolve, 0));
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/** Takes the lease when it is free or stale, and clears staging for this rescan. */
async function takeLease(ctx: EngineContext, owner: string): Promise<boolean> {
  const state = ctx.db.table(STATE_TABLE);
  return ctx.db.transaction('rw', [state, ctx.db.table(STAGING_TABLE)], async () => {
    const held = (await state.get(STATE_KEYS.rescanLease))?.value as RescanLease | undefined;
    if (held && ctx.runtime.now() - held.at < RESCAN_LEASE_MS) return false;
    await state.put({ key: STATE_KEYS.rescanLease, value: { owner, at: ctx.runtime.now() } satisfies RescanLease });
    await ctx.db.table(STAGING_TABLE).clear();
    return true;
  });
}

/** Inside a transaction with `_or3sync_state`: renews the lease, or throws when another tab took it over. */
async function holdLease(ctx: EngineContext, owner: string): Promise<void> {
  const state = ctx.db.table(STATE_TABLE);
  const held = (await state.get(STATE_KEYS.rescanLease))?.value as RescanLease | undefined;
  if (held?.owner !== owner) {
    throw new EngineRunError('rescan_busy', 'another tab took over the rescan');
  }
  await state.put({ key: STATE_KEYS.rescanLease, value: { owner, at: ctx.runtime.now() } satisfies RescanLease });
}

/** Gives the lease back if `owner` still holds it. */
export async function releaseRescanLease(ctx: EngineContext, owner: string): Promise<void> {
  const state = ctx.db.table(STATE_TABLE);
  await ctx.db.transaction('rw', state, async () => {
    const held = (await state.get(STATE_KEYS.rescanLease))?.value as RescanLease | undefined;
    if (held?.owner === owner) await state.delete(STATE_KEYS.rescanLease);
  });
}

async function stagePage(ctx: EngineContext, owner: string, page: SnapshotPage, pageNumber: number): Promise<void> {
  const row: StagedPageRow = { table_name: '', pk: String(pageNumber).padStart(9, '0'), items: page.items.map(stagedItem) };
  await ctx.db.transaction('rw', [ctx.db.table(STATE_TABLE), ctx.db.table(STAGING_TABLE)], async () => {
    await holdLease(ctx, owner);
    await ctx.db.table(STAGING_TABLE).put(row);
  });
}

/**
 * True while the last rescan left records whose pending writes it kept
 * without a snapshot version (project scope): `rescanDueAfterPush` has work
 * to do. Only a rescan writes them.
 */
export async function keptForRescanAfterPush(ctx: EngineContext): Promise<boolean> {
  return keptFromRow(await ctx.db.table(STATE_TABLE).get(STATE_KEYS.rescanAfterPush(ctx.cursorKey)));
}

/** Whether a `_or3sync_state` row (at `STATE_KEYS.rescanAfterPush`) keeps records for a rescan after the push. */
export function keptFromRow(row: SyncStateRow | undefined): boolean {
  return Array.isArray(row?.value);
}

/**
 * True when the records the last rescan kept for pending writes without a
 * snapshot version (project scope) have no ops left in the outbox; the
 * scope then owes a rescan, recorded in the same transaction.
 */
export async function rescanDueAfterPush(ctx: EngineContext): Promise<boolean> {
  const state = ctx.db.table(STATE_TABLE);
  const key = STATE_KEYS.rescanAfterPush(ctx.cursorKey);
  return ctx.db.transaction('rw', [STATE_TABLE, ...OUTBOX_SCOPE], async () => {
    const kept = (await state.get(key))?.value;
    if (!Array.isArray(kept)) return false;
    for (const [tableName, pk] of kept as [string, string][]) {
      if (await outbox.hasOps(ctx.db, tableName, pk)) return false;
    }
    await state.delete(key);
    await state.put({ key: STATE_KEYS.rescanOwed(ctx.cursorKey), value: 'scope_change' satisfies RescanReason });
    return true;
  });
}

async function isEmpty(ctx: EngineContext): Promise<boolean> {
  for (const name of [...ctx.runtime.tables.keys(), TOMBSTONES_TABLE]) {
    if ((await ctx.db.table(name).count()) > 0) return false;
  }
  return (await outbox.countActive(ctx.db)) === 0;
}

async function writeDirect(ctx: EngineContext, owner: string, plan: WriteAheadPlan, outcome: RescanOutcome): Promise<void> {
  const applied = await runRemoteTransaction(ctx.db, ctx.runtime, [], async () => {
    // The lease check goes out with the pages' reads; if it fails, the transaction aborts and nothing is written.
    const [, outcome] = await Promise.all([holdLease(ctx, owner), applyRemoteVersionsWriteAhead(ctx.db, ctx.runtime, plan)]);
    return outcome;
  });
  outcome.conflicts.push(...applied.conflicts);
}

function stagedItem(item: SnapshotPage['items'][number]): StagedItemRow {
  return {
    table_name: item.table_name,
    pk: item.pk,
    payload: item.payload,
    deleted: item.deleted,
    clock: item.clock,
    hlc: item.hlc,
    op_id: item.op_id,
    server_version: item.server_version,
  };
}

/**
 * The swap: checks the lease, reads staging, the live rows and the outbox
 * inside one transaction, keeps each pending local write that wins LWW
 * against the staged version, and replaces every synced table and the
 * tombstones, and stores `cursor`. `pushed`: records whose ops were pushed and
 * settled during this rescan (an adoption's); each is kept as it is locally,
 * like a pending write, unless the staged version wins LWW against its local stamp.
 */
async function swapStaged(
  ctx: EngineContext,
  owner: string,
  cursor: number,
  pushed: Map<string, { tableName: string; pk: string }>,
): Promise<ConflictEvent[]> {
  const conflicts: ConflictEvent[] = [];
  await runRemoteTransaction(ctx.db, ctx.runtime, [STAGING_TABLE], async () => {
    await holdLease(ctx, owner);
    const staged = await readStagedVersions(ctx);
    const localTombstones = new Map<string, TombstoneRow>();
    for (const t of (await ctx.db.table(TOMBSTONES_TABLE).toArray()) as TombstoneRow[]) {
      localTombstones.set(recordKey(t.table_name, t.pk), t);
    }
    const pendingByRecord = outbox.latestPerRecord(await outbox.activeOps(ctx.db), (op) => recordKey(op.table_name, op.pk));

    const nextRows = new Map<string, Map<string, RecordPayload>>();
    const nextTombstones = new Map<string, TombstoneRow>();
    const liveRows = new Map<string, RecordPayload[]>();
    const liveByPk = new Map<string, Map<string, RecordPayload>>();
    for (const table of ctx.runtime.tables.values()) {
      const rows = (await ctx.db.table(table.name).toArray()) as RecordPayload[];
      liveRows.set(table.name, rows);
      liveByPk.set(table.name, new Map(rows.map((row) => [pkToWire(row[table.primaryKey]), row])));
      nextRows.set(table.name, new Map());
    }
    for (const [key, version] of staged) {
      const table = ctx.runtime.tables.get(version.table_name)!;
      // The stored row lends the version its local-only fields.
      const row = rowFromVersion(table, version, liveByPk.get(table.name)!.get(version.pk));
      if (row) nextRows.get(table.name)!.set(version.pk, row);
      if (version.deleted) nextTombstones.set(key, tombstoneFromVersion(version, ctx.runtime.now()));
    }
    // Rows the table's filter keeps local are not the server's to replace: they stay as they are.
    for (const table of ctx.runtime.tables.values()) {
      if (table.conventions.shouldSync === null) continue;
      const rows = nextRows.get(table.name)!;
      for (const [pk, row] of liveByPk.get(table.name)!) if (!rowSyncs(table.conventions, row)) rows.set(pk, row);
    }

    // Overlay pending local writes that win against the staged version.
    const keptWithoutSnapshot: [string, string][] = [];
    for (const [key, op] of pendingByRecord) {
      const table = ctx.runtime.tables.get(op.table_name);
      if (!table) continue;
      const row = liveByPk.get(op.table_name)!.get(op.pk);
      const tomb = localTombstones.get(key);
      const local = localStamp(row, tomb, op);
      const remote = staged.get(key);
      if (!local) continue;
      if (remote && !winsOver(local, stampOf(remote))) {
        if (!sameWrite(local, stampOf(remote))) {
          conflicts.push({ tableName: op.table_name, pk: op.pk, local, remote: stampOf(remote), winner: 'remote' });
        }
        continue;
      }
      const rows = nextRows.get(table.name)!;
      if (row) rows.set(op.pk, row);
      else rows.delete(op.pk);
      if (tomb) nextTombstones.set(key, tomb);
      else nextTombstones.delete(key);
      if (!remote) keptWithoutSnapshot.push([op.table_name, op.pk]);
    }
    // Records pushed during the rescan: the server holds the local write (or a later one, which
    // the settle applied), newer than the staged version unless that version still wins.
    for (const [key, { tableName, pk }] of pushed) {
      if (pendingByRecord.has(key)) continue;
      const table = ctx.runtime.tables.get(tableName);
      if (!table) continue;
      const row = liveByPk.get(tableName)!.get(pk);
      const tomb = localTombstones.get(key);
      const local = maxStamp(rowStamp(row), tomb ? stampOf(tomb) : null);
      const remote = staged.get(key);
      if (remote && (!local || winsOver(stampOf(remote), local))) continue;
      const rows = nextRows.get(table.name)!;
      if (row) rows.set(pk, row);
      else rows.delete(pk);
      if (tomb) nextTombstones.set(key, tomb);
      else nextTombstones.delete(key);
      if (!remote) keptWithoutSnapshot.push([tableName, pk]);
    }
    // Under a project scope such a record may lie outside the project (a thread moved away, a
    // message of one): once its writes are pushed, a rescan settles where the server put it.
    const afterPush = STATE_KEYS.rescanAfterPush(ctx.cursorKey);
    if (ctx.scope.projectId != null && keptWithoutSnapshot.length > 0) {
      await ctx.db.table(STATE_TABLE).put({ key: afterPush, value: keptWithoutSnapshot });
    } else {
      await ctx.db.table(STATE_TABLE).delete(afterPush);
    }

    // Only what changes is written: a rescan of a database that was nearly up to date writes little.
    for (const [name, rows] of nextRows) {
      const table = ctx.runtime.tables.get(name)!;
      const primaryKey = (row: RecordPayload) => row[table.primaryKey];
      await replaceChanged(ctx.db.table(name), liveRows.get(name)!, (row) => pkToWire(primaryKey(row)), primaryKey, rows, sameJson);
    }
    const tombstones = ctx.db.table(TOMBSTONES_TABLE);
    const storedTombstones = (await tombstones.toArray()) as TombstoneRow[];
    await replaceChanged(tombstones, storedTombstones, (t) => recordKey(t.table_name, t.pk), (t) => [t.table_name, t.pk], nextTombstones, sameStamp);
    // Every tombstone was just replaced: the list of tables holding some is now exact.
    const clockState = await readClockState(ctx.db);
    clockState.tombstoneTables = [...new Set([...nextTombstones.values()].map((t) => t.table_name))];
    await writeClockState(ctx.db, clockState);
    await ctx.db.table(STATE_TABLE).put({ key: ctx.cursorKey, value: cursor });
    await ctx.db.table(STATE_TABLE).delete(STATE_KEYS.rescanOwed(ctx.cursorKey));
    await ctx.db.table(STATE_TABLE).delete(STATE_KEYS.adoption);
    // Every table was just read from the server: no catch-up is owed.
    await ctx.db.table(STATE_TABLE).delete(STATE_KEYS.catchUp);
    await ctx.db.table(STAGING_TABLE).clear();
  });
  return conflicts;
}

/** The staged snapshot of the synced tables, by record key. */
async function readStagedVersions(ctx: EngineContext): Promise<Map<string, RemoteVersion>> {
  const staged = new Map<string, RemoteVersion>();
  for (const page of (await ctx.db.table(STAGING_TABLE).toArray()) as StagedPageRow[]) {
    for (const item of page.items) {
      if (ctx.runtime.tables.has(item.table_name)) staged.set(recordKey(item.table_name, item.pk), versionFromItem(item));
    }
  }
  return staged;
}

/**
 * Makes `table` (holding `stored`) hold exactly `next` (keyed by `keyOf`): deletes the rows
 * `next` lacks (by `primaryKeyOf`) and puts the rows that differ from the stored ones.
 */
async function replaceChanged<T extends object>(
  table: Table,
  stored: T[],
  keyOf: (row: T) => string,
  primaryKeyOf: (row: T) => unknown,
  next: Map<string, T>,
  same: (stored: T, next: T) => boolean,
): Promise<void> {
  const gone: unknown[] = [];
  const seen = new Set<string>();
  for (const row of stored) {
    const key = keyOf(row);
    const wanted = next.get(key);
    // A row stored under another key of the same wire id (42 where the snapshot has "42") goes too.
    if (wanted === row) seen.add(key); // kept as it is (a pending or pushed local write)
    else if (wanted === undefined || !sameJson(primaryKeyOf(row), primaryKeyOf(wanted))) gone.push(primaryKeyOf(row));
    else if (same(row, wanted)) seen.add(key);
  }
  const changed = [...next].filter(([key]) => !seen.has(key)).map(([, row]) => row);
  if (gone.length > 0) await table.bulkDelete(gone);
  if (changed.length > 0) await table.bulkPut(changed);
}

/** Same tombstone stamp (the stored one keeps its `recorded_at`). */
function sameStamp(a: TombstoneRow, b: TombstoneRow): boolean {
  return a.clock === b.clock && a.hlc === b.hlc && a.op_id === b.op_id && a.server_version === b.server_version && a.deleted_at === b.deleted_at;
}

/** A live row's own stamp, when it has one (no op id: a pushed op's record has no op left). */
function rowStamp(row: RecordPayload | undefined): Stamp | null {
  return row && typeof row.clock === 'number' && typeof row.hlc === 'string' ? { clock: row.clock, hlc: row.hlc, op_id: null } : null;
}

function localStamp(row: RecordPayload | undefined, tomb: TombstoneRow | undefined, op: PendingOpRow): Stamp | null {
  const rowStamp: Stamp | null =
    row && typeof row.clock === 'number' && typeof row.hlc === 'string'
      ? { clock: row.clock, hlc: row.hlc, op_id: row.hlc === op.hlc ? op.op_id : null }
      : null;
  return maxStamp(rowStamp, tomb ? stampOf(tomb) : null);
}

function sameWrite(a: Stamp, b: Stamp): boolean {
  return a.clock === b.clock && a.hlc === b.hlc;
}
