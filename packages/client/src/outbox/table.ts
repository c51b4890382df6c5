/**
 * Where the outbox lives: its Dexie store, its stored row, and how a new op's
 * row is made. Only the `outbox/` module names the store.
 */
import type { Dexie, Table } from 'dexie';
import type { PushOp } from '@or3/sync-protocol';
import { CAPTURED, opState, type OpState, stateColumns, waitsForAuthor, type StoredOpState } from './op-state.js';

/** The outbox's store. */
export const OUTBOX_TABLE = '_or3sync_outbox';

/**
 * The outbox's Dexie store spec, FIFO by `seq` (also within each `status`, as
 * IndexedDB orders ties by primary key). Added to the engine's tables.
 */
export const OUTBOX_STORES = { [OUTBOX_TABLE]: '++seq, [table_name+pk], status' } as const;

/** The stores a transaction lists to read or write ops. */
export const OUTBOX_SCOPE: readonly string[] = [OUTBOX_TABLE];

/** The outbox of an engine from before the `_or3sync_` prefix (`legacy-layout.ts` moves its rows). */
export const LEGACY_OUTBOX = {
  pending_ops: { spec: '++seq, [table_name+pk], status', keyPath: 'seq', target: OUTBOX_TABLE },
} as const;

/** An outbox entry, as stored (its state in `StoredOpState`'s columns; read it with `opState`). */
export interface PendingOpRow extends PushOp, StoredOpState {
  /** Outbox position; assigned by IndexedDB. */
  seq?: number;
  attempts: number;
  /** Local wall time (ms) of capture. */
  created_at: number;
  /** The user who wrote the op (`userId` of the engine that captured it); absent on ops of an engine without one. */
  owner?: string;
}

/** A captured (or adopted) write's op, in its first state, written by `owner` when the engine knows its user. */
export function newOp(op: PushOp, createdAt: number, owner: string | null, state: OpState = CAPTURED): PendingOpRow {
  const row: PendingOpRow = { ...op, ...stateColumns(state), attempts: 0, created_at: createdAt };
  if (owner !== null) row.owner = owner;
  return row;
}

/** The store, typed (for the outbox's own modules). */
export function outboxTable(db: Dexie): Table<PendingOpRow, number> {
  return db.table<PendingOpRow, number>(OUTBOX_TABLE);
}

/** True for every op but one held for its author: the ops of the user the database belongs to. */
export function isActive(row: PendingOpRow): boolean {
  return !waitsForAuthor(opState(row));
}

/** The latest of a record's ops (highest `seq`), if any. */
export function latestOp(ops: Iterable<PendingOpRow>): PendingOpRow | undefined {
  let latest: PendingOpRow | undefined;
  for (const op of ops) if (!latest || (op.seq ?? 0) > (latest.seq ?? 0)) latest = op;
  return latest;
}
