/**
 * Wipe-and-hold (PROTOCOL.md section 6, "Users"): when the user opening a
 * database is not the one whose data it holds, before the app can read a row
 * and in one transaction over the synced tables and the engine's, the previous
 * owner's unsynced ops become held, every synced table is emptied, the sync
 * state (tombstones, cursors, owed rescans and adoption, runs, staging) starts
 * over, and the new user's own held ops, if any, become pending again with
 * their rows written back from the ops. The next run is a bootstrap rescan,
 * which keeps those pending writes where they win LWW, as always.
 */
import type { Dexie } from 'dexie';
import type { RecordPayload } from '@or3/sync-protocol';
import { runRemoteTransaction } from '../apply.js';
import type { CaptureRuntime } from '../capture/index.js';
import { noteTombstones, readClockState, writeClockState } from '../clock-state.js';
import { outbox, type PendingOpRow } from '../outbox/index.js';
import { RUNS_TABLE, STAGING_TABLE, STATE_KEYS, STATE_TABLE, TOMBSTONES_TABLE, type SyncedTable, type TombstoneRow } from '../schema.js';
import { OWNERSHIP_KEYS, readOwner } from './ownership.js';

/** What opening the database as a user changed. */
export interface OwnerSwitch {
  /** The user whose data the database held before (null: nobody, or a database from before ownership). */
  previousOwner: string | null;
  /** Ops of other users held just now. */
  held: number;
  /** This user's held ops made pending again (their rows are back). */
  released: number;
  /** The synced tables were emptied: the next run is a bootstrap rescan. */
  wiped: boolean;
}

/** The engine tables besides capture's that a wipe starts over. */
export const WIPE_EXTRA_TABLES = [RUNS_TABLE, STAGING_TABLE];

/**
 * Makes `userId` the owner of `db`, wiping and holding another owner's data
 * (see the file comment). A database nobody owns (from before ownership) is
 * claimed as it is: its unowned ops become `userId`'s. Capture ignores the
 * transaction (`runtime.remoteTransactions`).
 */
export function takeOwnership(db: Dexie, runtime: CaptureRuntime, userId: string): Promise<OwnerSwitch> {
  return runRemoteTransaction(db, runtime, WIPE_EXTRA_TABLES, async () => {
    const previousOwner = await readOwner(db);
    const outcome: OwnerSwitch = { previousOwner, held: 0, released: 0, wiped: false };
    if (previousOwner === userId) return outcome;
    if (previousOwner !== null) {
      await wipeSyncedData(db, runtime.tables);
      outcome.wiped = true;
      outcome.held = await outbox.holdOthers(db, userId, previousOwner);
    } else {
      await outbox.claimUnowned(db, userId);
    }
    const mine = await outbox.giveBackHeld(db, userId);
    outcome.released = mine.length;
    await restoreRows(db, runtime.tables, mine);
    await db.table(STATE_TABLE).put({ key: OWNERSHIP_KEYS.owner, value: userId });
    return outcome;
  });
}

/**
 * Empties every synced table and starts the sync state over: tombstones, staging, runs,
 * cursors, owed rescans and adoption (the HLC, device id and workspace stay). Inside the
 * caller's remote transaction.
 */
export async function wipeSyncedData(db: Dexie, tables: Map<string, SyncedTable>): Promise<void> {
  for (const name of [...tables.keys(), TOMBSTONES_TABLE, ...WIPE_EXTRA_TABLES]) await db.table(name).clear();
  const state = db.table(STATE_TABLE);
  const scoped = [STATE_KEYS.cursor(''), STATE_KEYS.rescanOwed(''), STATE_KEYS.rescanAfterPush('')];
  const keys = (await state.toCollection().primaryKeys()) as string[];
  const stale = keys.filter((key) => scoped.some((prefix) => key.startsWith(prefix)));
  await state.bulkDelete([...stale, STATE_KEYS.adoption, STATE_KEYS.rescanLease]);
  const clock = await readClockState(db);
  clock.tombstoneTables = [];
  await writeClockState(db, clock);
}

/**
 * Writes back the records of `ops` (an author's released writes) into emptied tables: each
 * record's latest op, a put as its row, a delete as its tombstone stamp (and, on a soft
 * table, its tombstone row).
 */
async function restoreRows(db: Dexie, tables: Map<string, SyncedTable>, ops: PendingOpRow[]): Promise<void> {
  const latest = outbox.latestPerRecord(ops, (op) => `${op.table_name}\u0000${op.pk}`);
  const tombstones: TombstoneRow[] = [];
  for (const op of latest.values()) {
    const table = tables.get(op.table_name);
    if (!table) continue;
    const row: RecordPayload | null = op.payload;
    if (op.operation === 'delete') {
      tombstones.push({
        table_name: op.table_name,
        pk: op.pk,
        clock: op.clock,
        hlc: op.hlc,
        op_id: op.op_id,
        deleted_at: typeof row?.deleted_at === 'number' ? row.deleted_at : null,
        server_version: null,
        recorded_at: Date.now(),
      });
      if (table.deletes === 'hard') continue;
    }
    if (row) await db.table(table.name).put(row);
  }
  if (tombstones.length === 0) return;
  await db.table(TOMBSTONES_TABLE).bulkPut(tombstones);
  const clock = await readClockState(db);
  noteTombstones(clock, tombstones.map((t) => t.table_name));
  await writeClockState(db, clock);
}
