/**
 * The engine's own Dexie tables and the row types stored in them, plus the
 * per-table sync configuration the app declares.
 */
import type { OpRejection, PushOp } from './wire.js';

/** How a deletion is kept locally: a tombstone row (`soft`) or no row (`hard`). */
export type DeleteMode = 'soft' | 'hard';

/** What the app declares for one synced table. */
export interface SyncedTableOptions {
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
}

/** Resolves the app's table declarations, with the protocol's defaults. */
export function resolveSyncedTables(
  tables: readonly string[] | Record<string, SyncedTableOptions>,
): Map<string, SyncedTable> {
  const entries: [string, SyncedTableOptions][] = Array.isArray(tables)
    ? tables.map((name) => [name, {}])
    : Object.entries(tables as Record<string, SyncedTableOptions>);
  const resolved = new Map<string, SyncedTable>();
  for (const [name, options] of entries) {
    if (name in ENGINE_TABLES) throw new Error(`or3-sync: table name ${name} is reserved by the engine`);
    resolved.set(name, {
      name,
      primaryKey: options.primaryKey ?? (name === 'file_meta' ? 'hash' : 'id'),
      deletes: options.deletes ?? 'soft',
      orderKey: options.orderKey ?? name === 'messages',
    });
  }
  return resolved;
}

/** Dexie store specs of the engine's tables, added to the app's schema. */
export const ENGINE_TABLES = {
  /** The outbox, FIFO by `seq` (also within each `status`, as IndexedDB orders ties by primary key). */
  pending_ops: '++seq, [table_name+pk], status',
  /** Key-value state: device id, HLC, cursors, clock offset. */
  sync_state: 'key',
  /** Tombstone stamps, kept for soft and hard tables alike. */
  sync_tombstones: '[table_name+pk], server_version',
  /** One row per sync run. */
  sync_runs: '++id, started_at',
  /**
   * Snapshot pages of a rescan, before the swap: one row per page (`StagedPageRow`), so staging
   * 100 000 records writes 200 rows, not 100 000. (The key path is the one of its first version, a row per item.)
   */
  sync_staging: '[table_name+pk]',
} as const;

/** Engine tables every captured write also touches. */
export const CAPTURE_TABLES = ['pending_ops', 'sync_tombstones', 'sync_state'] as const;

/** An outbox entry. */
export interface PendingOpRow extends PushOp {
  /** Outbox position; assigned by IndexedDB. */
  seq?: number;
  /** `failed` ops are kept and skipped until the app discards them. */
  status: 'pending' | 'failed';
  /** 1 once the op was ever part of a push request; such ops are never coalesced. */
  sent: 0 | 1;
  attempts: number;
  error: OpRejection | null;
  /** Local wall time (ms) of capture. */
  created_at: number;
}

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

/** A row of `sync_state`. */
export interface SyncStateRow {
  key: string;
  value: unknown;
}

/** A row of `sync_runs`. */
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

/** Keys of `sync_state`. */
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
} as const;
