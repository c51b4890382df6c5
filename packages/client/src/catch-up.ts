/**
 * A newly synced table catches up (PROTOCOL.md section 6): when a release
 * starts syncing a table (in `syncedTables` now, not when the engine last
 * opened; with or without a Dexie version bump), the next run fetches that
 * table's rows with a snapshot scoped to it (`tables=`), under the rules of
 * adoption: local rows the server lacks are queued, rows both have go to
 * last-writer-wins. The cursor stays where it is: the pull that follows
 * re-delivers the table's later changes, which LWW makes harmless.
 *
 * The tables owed a catch-up are kept in `_or3sync_state` until it completes
 * (a full rescan settles them too). A server that does not take `tables`
 * (400) is asked for a whole snapshot, of which only these tables are kept.
 */
import type { Dexie } from 'dexie';
import type { SnapshotPage } from '@or3/sync-protocol';
import { applyRemoteVersions, recordKey, runRemoteTransaction, versionFromItem, type RemoteVersion } from './apply.js';
import { adoptTable } from './adopt.js';
import type { EngineContext } from './context.js';
import type { ConflictEvent } from './events.js';
import { isSyncProviderError } from './provider.js';
import { STATE_KEYS, STATE_TABLE, type SyncStateRow } from './schema.js';

/** What a catch-up did. */
export interface CatchUpOutcome {
  /** Server rows read. */
  items: number;
  conflicts: ConflictEvent[];
}

/**
 * On open (inside its transaction): records the synced tables and adds the
 * ones new since the last open to the tables owed a catch-up. An engine that
 * never recorded its tables (a release before this rule) records them and owes
 * nothing: only tables added from then on are caught up.
 */
export async function noteSyncedTables(db: Dexie, synced: readonly string[]): Promise<void> {
  const state = db.table(STATE_TABLE);
  const before = (await state.get(STATE_KEYS.syncedTables))?.value;
  const owed = new Set(await owedTables(db));
  const known = Array.isArray(before) ? new Set(before) : null;
  for (const name of synced) if (known && !known.has(name)) owed.add(name);
  await state.put({ key: STATE_KEYS.syncedTables, value: [...synced] });
  await state.put({ key: STATE_KEYS.catchUp, value: synced.filter((name) => owed.has(name)) });
}

/** The tables owed a catch-up (inside or outside a transaction). */
export async function owedTables(db: Dexie): Promise<string[]> {
  return owedTablesFromRow(await db.table(STATE_TABLE).get(STATE_KEYS.catchUp));
}

/** The tables a `_or3sync_state` row (at `STATE_KEYS.catchUp`) says are owed a catch-up. */
export function owedTablesFromRow(row: SyncStateRow | undefined): string[] {
  const value = row?.value;
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** Runs the catch-up owed (`owed`, as the run read it), if any. */
export async function catchUpNewTables(ctx: EngineContext, owed: string[]): Promise<CatchUpOutcome> {
  const outcome: CatchUpOutcome = { items: 0, conflicts: [] };
  if (owed.length === 0) return outcome;
  const names = owed.filter((name) => ctx.runtime.tables.has(name));
  if (names.length > 0) {
    ctx.events.emit('sync.rescan:action', { phase: 'started', reason: 'new_tables' });
    const staged = await readServerRows(ctx, names);
    outcome.items = staged.size;
    for (const name of names) await adoptTable(ctx, ctx.runtime.tables.get(name)!, staged, ctx.settings.adoptBatchSize);
    const versions = [...staged.values()];
    for (let at = 0; at < versions.length; at += ctx.settings.adoptBatchSize) {
      const batch = versions.slice(at, at + ctx.settings.adoptBatchSize);
      const applied = await runRemoteTransaction(ctx.db, ctx.runtime, [], () => applyRemoteVersions(ctx.db, ctx.runtime, batch));
      outcome.conflicts.push(...applied.conflicts);
    }
    ctx.events.emit('sync.rescan:action', { phase: 'finished', reason: 'new_tables', items: outcome.items });
    await ctx.refreshPendingEstimate();
  }
  await ctx.db.table(STATE_TABLE).delete(STATE_KEYS.catchUp);
  return outcome;
}

/** The server's rows of `names`, by record key (a scoped snapshot, or a whole one when the server does not take `tables`). */
async function readServerRows(ctx: EngineContext, names: string[]): Promise<Map<string, RemoteVersion>> {
  let scoped: readonly string[] | undefined = names;
  let page: SnapshotPage;
  try {
    page = await ctx.provider.snapshot(ctx.scope, null, scoped);
  } catch (error) {
    if (!isSyncProviderError(error) || error.status !== 400) throw error;
    scoped = undefined;
    page = await ctx.provider.snapshot(ctx.scope, null);
  }
  const wanted = new Set(names);
  const staged = new Map<string, RemoteVersion>();
  for (;;) {
    for (const item of page.items) {
      if (wanted.has(item.table_name)) staged.set(recordKey(item.table_name, item.pk), versionFromItem(item));
    }
    if (!page.next_page_token) return staged;
    page = await ctx.provider.snapshot(ctx.scope, page.next_page_token, scoped);
  }
}
