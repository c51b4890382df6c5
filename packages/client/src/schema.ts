/**
 * The engine's own Dexie tables and the row types stored in them, plus the
 * per-table sync configuration the app declares.
 */
import { resolveTableConventions, type TableConventionOptions, type TableConventions, TableDeclarationError } from './table-conventions.js';
import { OUTBOX_SCOPE, OUTBOX_STORES } from './outbox/index.js';

/** How a deletion is kept locally: a tombstone row (`soft`) or no row (`hard`). */
export type DeleteMode = 'soft' | 'hard';

/** What the app declares for one synced table. */
export interface SyncedTableOptions extends TableConventionOptions {
  /** Primary key field; `id` by default (`hash` for `file_meta`). */
  primaryKey?: string;
  /** `soft` (default): a delete is a row with `deleted: true`. `hard`: the row is removed. */
  deletes?: DeleteMode;
  /** Thread-like table whose rows carry `project_id` (project scope). */
  projectScoped?: boolean;
  /** Stamp `order_key` (the creating op's hlc) on new rows; on by default for `messages`. */
  orderKey?: boolean;
}

/** A synced table as the engine uses it. */
export interface SyncedTable {
  name: string;
  primaryKey: string;
  deletes: DeleteMode;
  orderKey: boolean;
  conventions: TableConventions;
}

const TABLE_OPTIONS = new Set(['primaryKey', 'deletes', 'projectScoped', 'orderKey', 'shouldSync', 'localOnlyFields', 'wireNames']);

/** Resolves the app's table declarations, with the protocol's defaults. */
export function resolveSyncedTables(
  tables: readonly string[] | Record<string, SyncedTableOptions>,
): Map<string, SyncedTable> {
  const entries: [string, SyncedTableOptions][] = Array.isArray(tables)
    ? tables.map((name) => [name, {}])
    : Object.entries(tables as Record<string, SyncedTableOptions>);
  const resolved = new Map<string, SyncedTable>();
  for (const [name, options] of entries) {
    if (name.startsWith(ENGINE_TABLE_PREFIX)) throw new Error(`or3-sync: table name ${name} is reserved by the engine`);
    if (typeof options !== 'object' || options === null) throw new TableDeclarationError(name, 'options', 'must be an object');
    for (const key of Object.keys(options)) {
      if (!TABLE_OPTIONS.has(key)) throw new TableDeclarationError(name, `option ${key}`, 'is not a table option');
    }
    const primaryKey = options.primaryKey ?? (name === 'file_meta' ? 'hash' : 'id');
    if (typeof primaryKey !== 'string' || primaryKey === '') throw new TableDeclarationError(name, 'primaryKey', 'must be a field name');
    const deletes = options.deletes ?? 'soft';
    if (deletes !== 'soft' && deletes !== 'hard') throw new TableDeclarationError(name, 'deletes', `must be soft or hard, not ${String(deletes)}`);
    resolved.set(name, {
      name,
      primaryKey,
      deletes,
      orderKey: options.orderKey ?? name === 'messages',
      conventions: resolveTableConventions(name, primaryKey, options),
    });
  }
  return resolved;
}

/**
 * Every engine table's name starts with this prefix, which apps must not use: the engine's
 * stores then never clash with an app's own (OR3 Chat has its own `pending_ops`, `sync_state`...).
 */
export const ENGINE_TABLE_PREFIX = '_or3sync_';

/** Key-value state: device id, HLC, cursors, clock offset, adoption progress. */
export const STATE_TABLE = '_or3sync_state';
/** Tombstone stamps. */
export const TOMBSTONES_TABLE = '_or3sync_tombstones';
/** Sync run history. */
export const RUNS_TABLE = '_or3sync_runs';
/** Rescan staging. */
export const STAGING_TABLE = '_or3sync_staging';

/**
 * Dexie store specs of the engine's tables, added to the app's schema. Across engine
 * releases these only gain tables and indexes (Dexie 4 adds them to an installed database
 * without a version bump); a key path never changes: a new layout gets a new table name.
 */
export const ENGINE_TABLES = {
  /** The outbox (`outbox/table.ts`). */
  ...OUTBOX_STORES,
  [STATE_TABLE]: 'key',
  /** Kept for soft and hard tables alike. */
  [TOMBSTONES_TABLE]: '[table_name+pk], server_version',
  /** One row per sync run. */
  [RUNS_TABLE]: '++id, started_at',
  /**
   * Snapshot pages of a rescan, before the swap: one row per page (`StagedPageRow`), so staging
   * 100 000 records writes 200 rows, not 100 000. (The key path is the one of its first version, a row per item.)
   */
  [STAGING_TABLE]: '[table_name+pk]',
} as const;

/** Engine tables every captured write also touches. */
export const CAPTURE_TABLES: readonly string[] = [...OUTBOX_SCOPE, TOMBSTONES_TABLE, STATE_TABLE];

/** The stamp of a deleted record. */
export interface TombstoneRow {
  table_name: string;
  pk: string;
  clock: number;
  hlc: string;
  op_id: string;
  /** App time of the delete, when known. */
  deleted_at: number | null;
  /** Log position, once the server has it. */
  server_version: number | null;
  /** Local wall time (ms) the stamp was recorded, for retention. */
  recorded_at: number;
}

/** A row of the state table. */
export interface SyncStateRow {
  key: string;
  value: unknown;
}

/** A row of the runs table. */
export interface SyncRunRow {
  id?: number;
  started_at: number;
  finished_at: number | null;
  pushed: number;
  pulled: number;
  conflicts: number;
  error: string | null;
}

/** A staged snapshot item. */
export interface StagedItemRow {
  table_name: string;
  pk: string;
  payload: Record<string, unknown> | null;
  deleted: boolean;
  clock: number;
  hlc: string;
  op_id: string;
  server_version: number;
}

/** One staged snapshot page: key `['', page number padded to 9 digits]` (no table is named ''). */
export interface StagedPageRow {
  table_name: '';
  pk: string;
  items: StagedItemRow[];
}

/** Keys of the state table. */
export const STATE_KEYS = {
  deviceId: 'device_id',
  hlc: 'hlc',
  clockOffset: 'clock_offset_ms',
  /** The tab that is rescanning, and when it last made progress (tabs share the staging table). */
  rescanLease: 'rescan_lease',
  cursor: (scopeKey: string) => `cursor:${scopeKey}`,
  /** A rescan the scope owes (a pulled scope change), kept until a rescan of the scope completes. */
  rescanOwed: (cursorKey: string) => `rescan_owed:${cursorKey}`,
  /**
   * Under a project scope, records ([table, pk]) whose pending writes the last rescan kept although its
   * snapshot lacked them: once none has an op left, the scope owes a rescan (they may lie outside it).
   */
  rescanAfterPush: (cursorKey: string) => `rescan_after_push:${cursorKey}`,
  /** Adoption owed (`AdoptionProgress`): rows the database held before it had sync history. */
  adoption: 'adoption',
  /** The app's highest declared Dexie version when last opened: a change means its upgrade() may have written rows. */
  appSchemaVersion: 'app_schema_version',
} as const;
