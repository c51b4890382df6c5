/**
 * What the app does about an op the server rejected for good (PROTOCOL.md
 * section 6), as three separate calls, so no recovery deletes a row the user
 * did not ask to delete:
 * - `discardFailedOp`: stop pushing the op; local data stays as it is (the
 *   record is local-only until it is written again);
 * - `restoreServerCopy`: drop the op and put the server's copy of the record
 *   back (which removes a row the server never had);
 * - `retryFailedOps`: push the ops again (after the cause is fixed).
 */
import { rowFromVersion, runRemoteTransaction, tombstoneFromVersion, versionFromItem } from './apply.js';
import { noteTombstones, readClockState, writeClockState } from './clock-state.js';
import type { EngineContext } from './context.js';
import { outbox, type PendingOpRow } from './outbox/index.js';
import { TOMBSTONES_TABLE, type TombstoneRow } from './schema.js';

async function failedOp(ctx: EngineContext, opId: string): Promise<PendingOpRow> {
  const op = await outbox.findFailed(ctx.db, opId);
  if (!op) throw new Error(`or3-sync: no failed op ${opId} in the outbox`);
  return op;
}

/** Drops a failed op and leaves the local rows (and tombstones) as they are. */
export async function discardFailedOp(ctx: EngineContext, opId: string): Promise<void> {
  const op = await failedOp(ctx, opId);
  await outbox.discard(ctx.db, op.seq!);
  await ctx.refreshPendingEstimate();
}

/**
 * Drops a failed op and puts the server's copy of its record back (or removes
 * the row when the server has none). A later local write on the same record
 * keeps its row.
 */
export async function restoreServerCopy(ctx: EngineContext, opId: string): Promise<void> {
  const op = await failedOp(ctx, opId);
  if (!ctx.provider.getRecord) {
    throw new Error('or3-sync: this provider cannot fetch records, so the server copy cannot be restored');
  }
  const item = await ctx.provider.getRecord(ctx.scope, op.table_name, op.pk);
  const table = ctx.runtime.tables.get(op.table_name);
  await runRemoteTransaction(ctx.db, ctx.runtime, [], async () => {
    await outbox.discard(ctx.db, op.seq!);
    if (!table || (await outbox.hasOps(ctx.db, op.table_name, op.pk))) return;
    const tombstones = ctx.db.table<TombstoneRow>(TOMBSTONES_TABLE);
    const tomb = await tombstones.get([op.table_name, op.pk]);
    if (tomb && tomb.op_id === op.op_id) await tombstones.delete([op.table_name, op.pk]);
    const rows = ctx.db.table(op.table_name);
    if (!item) {
      await rows.delete(op.pk);
      return;
    }
    const version = versionFromItem(item);
    const row = rowFromVersion(table, version);
    if (row) await rows.put(row);
    else await rows.delete(op.pk);
    if (version.deleted) {
      await tombstones.put(tombstoneFromVersion(version, ctx.runtime.now()));
      const clockState = await readClockState(ctx.db);
      noteTombstones(clockState, [op.table_name]);
      await writeClockState(ctx.db, clockState);
    }
  });
  await ctx.refreshPendingEstimate();
}

/** Makes the failed op `opId` (every failed op when null) pending again; returns how many. Throws when `opId` is not a failed op. */
export async function retryFailedOps(ctx: EngineContext, opId: string | null): Promise<number> {
  if (opId !== null) await failedOp(ctx, opId);
  const retried = await outbox.retryFailed(ctx.db, (op) => opId === null || op.op_id === opId);
  await ctx.refreshPendingEstimate();
  return retried;
}
