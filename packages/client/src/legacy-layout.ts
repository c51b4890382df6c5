/**
 * Databases created by engines before the `_or3sync_` prefix keep their
 * engine state in `pending_ops`, `sync_state`, `sync_tombstones`,
 * `sync_runs` and `sync_staging`. Those names are common (OR3 Chat has its
 * own `pending_ops` and `sync_state`), so a table is taken for the old
 * engine's only when the installed database has the old engine's marker (a
 * `sync_state` keyed by `key` holding a `device_id` row), the table has the
 * old engine's key path, and the app does not declare that name itself.
 *
 * Found tables that still hold rows are declared (so no upgrade step of the
 * app drops them before they are read), and their rows move to the new
 * tables in one transaction after the database opens: pending writes,
 * cursors, device id and clock stay, so nothing is re-adopted or lost.
 * Emptied, they are no longer declared on the next attach.
 */
import type { Dexie, Table } from 'dexie';
import { declaredTableNames, dynamicTwin } from './dexie-internals.js';
import { LEGACY_OUTBOX } from './outbox/index.js';
import { RUNS_TABLE, STATE_KEYS, STATE_TABLE, TOMBSTONES_TABLE } from './schema.js';

interface LegacyTable {
  /** The store spec the old engine declared. */
  spec: string;
  keyPath: string | string[];
  /** Where its rows go; null: discarded (a rescan's staging restarts anyway). */
  target: string | null;
}

const LEGACY_TABLES: Record<string, LegacyTable> = {
  ...LEGACY_OUTBOX,
  sync_state: { spec: 'key', keyPath: 'key', target: STATE_TABLE },
  sync_tombstones: { spec: '[table_name+pk], server_version', keyPath: ['table_name', 'pk'], target: TOMBSTONES_TABLE },
  sync_runs: { spec: '++id, started_at', keyPath: 'id', target: RUNS_TABLE },
  sync_staging: { spec: '[table_name+pk]', keyPath: ['table_name', 'pk'], target: null },
};

/**
 * The old engine's tables in the installed database `db` will open (not yet
 * open), with rows to migrate, as Dexie store specs to declare.
 */
export async function findLegacyTables(db: Dexie): Promise<Record<string, string>> {
  const appTables = declaredTableNames(db);
  const probe = dynamicTwin(db);
  try {
    await probe.open();
  } catch (error) {
    if ((error as Error)?.name === 'NoSuchDatabaseError') return {};
    throw error;
  }
  try {
    const installed = new Map(probe.tables.map((table) => [table.name, table]));
    const state = installed.get('sync_state');
    if (!state || appTables.has('sync_state') || !isLegacy(state, LEGACY_TABLES.sync_state!)) return {};
    const marker = (await state.get(STATE_KEYS.deviceId)) as { value?: unknown } | undefined;
    if (typeof marker?.value !== 'string') return {};
    const found: Record<string, string> = {};
    for (const [name, legacy] of Object.entries(LEGACY_TABLES)) {
      const table = installed.get(name);
      if (!table || appTables.has(name) || !isLegacy(table, legacy)) continue;
      if ((await table.count()) > 0) found[name] = legacy.spec;
    }
    return found;
  } finally {
    probe.close();
  }
}

function isLegacy(table: Table, legacy: LegacyTable): boolean {
  return JSON.stringify(table.schema.primKey.keyPath) === JSON.stringify(legacy.keyPath);
}

/** Moves the rows of the found legacy tables into the engine's tables and empties them, in one transaction. */
export async function migrateLegacyTables(db: Dexie, found: Record<string, string>): Promise<void> {
  const names = Object.keys(found);
  if (names.length === 0) return;
  const targets = names.flatMap((name) => (LEGACY_TABLES[name]!.target ? [LEGACY_TABLES[name]!.target!] : []));
  await db.transaction('rw', [...names, ...targets], async () => {
    for (const name of names) {
      const target = LEGACY_TABLES[name]!.target;
      // Keys are kept: the outbox's `seq` order (and the auto-increment after it) stays the same.
      if (target) await db.table(target).bulkPut(await db.table(name).toArray());
      await db.table(name).clear();
    }
  });
}
