/**
 * `attachSync(db, options)`: sync for the app's own Dexie database, with its
 * versions and `upgrade()` functions, and `openWorkspace()`, the shorthand
 * that builds the Dexie from a plain schema.
 *
 * The engine's stores (`_or3sync_*`, a prefix apps must not use) are added to
 * the app's oldest declared version. Dexie's versions are cumulative, so every
 * version then holds them: an upgrade from any installed version creates them
 * in its first step and never drops them in a later one. On a database that
 * is already at the app's latest version, Dexie 4 adds the missing stores
 * itself (it bumps the native version; the app bumps nothing), which is also
 * how the engine's stores gain tables or indexes in later engine releases.
 */
import { Dexie, type DexieOptions } from 'dexie';
import { declaredTableNames, declaredVersions } from './dexie-internals.js';
import { SyncEngine, workspaceDatabaseName, type AttachSyncOptions } from './engine.js';
import { findLegacyTables } from './legacy-layout.js';
import { ENGINE_TABLE_PREFIX, ENGINE_TABLES, resolveSyncedTables, type SyncedTableOptions } from './schema.js';
import { checkPrimaryKey } from './table-conventions.js';

/**
 * Attaches sync to `db`, the app's Dexie (or subclass) with its versions
 * declared and not yet opened; opens it and returns the idle engine (call
 * `start()` or `sync()`), whose `engine.db` has `db`'s type. Rows the
 * database already holds are adopted on the first sync. Throws, naming the
 * table and field, on a bad declaration.
 */
export async function attachSync<DB extends Dexie>(db: DB, options: AttachSyncOptions): Promise<SyncEngine<DB>> {
  if (db.isOpen()) throw new Error('or3-sync: attachSync needs the database before it is opened (Dexie opens on first use)');
  const versions = declaredVersions(db);
  if (versions.length === 0) throw new Error(`or3-sync: declare the app's db.version(n).stores({...}) before attachSync`);
  for (const name of declaredTableNames(db)) {
    if (name.startsWith(ENGINE_TABLE_PREFIX)) {
      throw new Error(`or3-sync: table name ${name} is reserved by the engine (prefix ${ENGINE_TABLE_PREFIX})`);
    }
  }
  const batch = options.adoptBatchSize;
  if (batch !== undefined && !(Number.isInteger(batch) && batch > 0)) throw new Error(`or3-sync: adoptBatchSize must be a positive integer, not ${batch}`);
  const tables = resolveSyncedTables(options.syncedTables);
  const declared = new Set(db.tables.map((table) => table.name));
  for (const table of tables.values()) {
    if (!declared.has(table.name)) throw new Error(`or3-sync: synced table ${table.name} is not in the app's schema`);
    checkPrimaryKey(table.name, table.primaryKey, db.table(table.name).schema.primKey);
  }
  const legacyTables = await findLegacyTables(db);
  versions[0]!.stores({ ...ENGINE_TABLES, ...legacyTables });
  const declaredVersion = Math.max(...versions.map((version) => version._cfg.version));
  const engine = new SyncEngine(db, options, { tables, declaredVersion, legacyTables });
  await engine.open();
  return engine;
}

/** How an app that keeps no Dexie of its own opens a workspace (see `openWorkspace`). */
export interface OpenWorkspaceOptions extends Omit<AttachSyncOptions, 'syncedTables'> {
  /** The app's Dexie stores, e.g. `{ threads: 'id, updated_at', messages: 'id, thread_id' }`. */
  schema: Record<string, string>;
  /** Dexie version of `schema`; bump it when the schema changes. Default 1. */
  schemaVersion?: number;
  /** Which tables sync and how; every table of `schema` by default, soft deletes. */
  syncedTables?: readonly string[] | Record<string, SyncedTableOptions>;
  /** Passed to Dexie (e.g. `indexedDB` and `IDBKeyRange` from fake-indexeddb in tests). */
  dexieOptions?: DexieOptions;
}

/** Opens `or3-db-${workspaceId}` with `schema` at one version and attaches sync to it. */
export function openWorkspace(options: OpenWorkspaceOptions): Promise<SyncEngine> {
  const { schema, schemaVersion, dexieOptions, syncedTables, ...rest } = options;
  const db = new Dexie(workspaceDatabaseName(options.workspaceId), dexieOptions);
  db.version(schemaVersion ?? 1).stores(schema);
  return attachSync(db, { ...rest, syncedTables: syncedTables ?? Object.keys(schema) });
}
