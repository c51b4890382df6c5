/**
 * The device's clock state, one `_or3sync_state` row shared by all tabs: the HLC
 * (PROTOCOL.md section 2) and the synced tables that hold tombstone stamps.
 *
 * Capture reads this row in every transaction anyway (for the HLC), so it
 * also carries what lets capture skip the `_or3sync_tombstones` lookup for tables
 * that have never had a tombstone. Every writer of `_or3sync_tombstones` names the
 * table here in the same transaction; the list only grows (a stale entry
 * costs a lookup, never correctness), except when a rescan replaces all
 * tombstones and writes the exact list.
 */
import type { Dexie } from 'dexie';
import type { HlcState } from '@or3/sync-protocol';
import {
  STATE_KEYS,
  STATE_TABLE,
  type SyncStateRow,
} from './schema.js';

/** The clock state as the engine uses it. */
export interface ClockState extends HlcState {
  /**
   * Synced tables with at least one stamp in `_or3sync_tombstones`. Null when
   * unknown (a row written by an older engine): every table may have some.
   */
  tombstoneTables: string[] | null;
}

/** The stored shape: `{ ms, counter, tombstone_tables? }`. */
interface StoredClockState {
  ms?: unknown;
  counter?: unknown;
  tombstone_tables?: unknown;
}

/** The state in a `_or3sync_state` row (or the initial state when there is none). */
export function clockStateFromRow(row: SyncStateRow | undefined): ClockState {
  const value = (row?.value ?? {}) as StoredClockState;
  const tables = value.tombstone_tables;
  return {
    ms: typeof value.ms === 'number' ? value.ms : 0,
    counter: typeof value.counter === 'number' ? value.counter : 0,
    tombstoneTables: Array.isArray(tables) ? tables.filter((t): t is string => typeof t === 'string') : null,
  };
}

/** The `_or3sync_state` row that stores `state`. */
export function clockStateRow(state: ClockState): SyncStateRow {
  const value: Record<string, unknown> = { ms: state.ms, counter: state.counter };
  if (state.tombstoneTables !== null) value.tombstone_tables = [...state.tombstoneTables];
  return { key: STATE_KEYS.hlc, value };
}

/** A copy that later changes to `state` leave alone. */
export function copyClockState(state: ClockState): ClockState {
  return { ...state, tombstoneTables: state.tombstoneTables && [...state.tombstoneTables] };
}

/** Whether two clock states are the same (HLC and the tables with tombstones). */
export function sameClockState(a: ClockState, b: ClockState): boolean {
  return (
    a.ms === b.ms &&
    a.counter === b.counter &&
    (a.tombstoneTables === null) === (b.tombstoneTables === null) &&
    (a.tombstoneTables ?? []).join('\u0000') === (b.tombstoneTables ?? []).join('\u0000')
  );
}

/** Whether `_or3sync_tombstones` may hold a stamp of `tableName`. */
export function mayHoldTombstones(state: ClockState, tableName: string): boolean {
  return state.tombstoneTables === null || state.tombstoneTables.includes(tableName);
}

/** Records that `tableNames` now have tombstone stamps (in place). */
export function noteTombstones(state: ClockState, tableNames: Iterable<string>): void {
  if (state.tombstoneTables === null) return;
  for (const name of tableNames) {
    if (!state.tombstoneTables.includes(name)) state.tombstoneTables.push(name);
  }
}

/** Reads the clock state through the Dexie API (inside the caller's transaction). */
export async function readClockState(db: Dexie): Promise<ClockState> {
  return clockStateFromRow((await db.table(STATE_TABLE).get(STATE_KEYS.hlc)) as SyncStateRow | undefined);
}

/** Writes the clock state through the Dexie API (inside the caller's transaction). */
export async function writeClockState(db: Dexie, state: ClockState): Promise<void> {
  await db.table(STATE_TABLE).put(clockStateRow(state));
}
