/**
 * Whose ops the outbox holds (PROTOCOL.md section 6, "Users"): each op's
 * author (`owner`), and the held ops of users the database does not belong to
 * now. Every function runs inside the caller's transaction when there is one
 * (it must list `OUTBOX_SCOPE`). Ops of no recorded author were written before
 * ownership, or by an engine without `userId`: they are the owner's.
 */
import type { Dexie } from 'dexie';
import type { OpRejection } from '@or3/sync-protocol';
import { failOp, holdOp, isQueued, opState, releaseOp, stateColumns, STORED_STATUS, type HeldReason, type OpState } from './op-state.js';
import { isActive, outboxTable, type PendingOpRow } from './table.js';

/** Held ops, in outbox order (`engine.heldOps()`). */
export function heldOps(db: Dexie): Promise<PendingOpRow[]> {
  return outboxTable(db).where('status').equals(STORED_STATUS.held).toArray();
}

/** How many ops are held. */
export function countHeld(db: Dexie): Promise<number> {
  return outboxTable(db).where('status').equals(STORED_STATUS.held).count();
}

/** `op` in `state`, its author set (a held op always names one). */
function withState(op: PendingOpRow, state: OpState, owner = op.owner): PendingOpRow {
  const { held_reason: _reason, ...rest } = op;
  const row: PendingOpRow = { ...rest, ...stateColumns(state) };
  if (owner !== undefined) row.owner = owner;
  return row;
}

/** Holds every active op not written by `userId` (`previousOwner`'s when none is recorded); returns how many. */
export async function holdOthers(db: Dexie, userId: string, previousOwner: string, reason: HeldReason): Promise<number> {
  const others = (await outboxTable(db).filter(isActive).toArray()).filter((op) => (op.owner ?? previousOwner) !== userId);
  await outboxTable(db).bulkPut(others.map((op) => withState(op, holdOp(opState(op), reason), op.owner ?? previousOwner)));
  return others.length;
}

/** Makes the ops of no recorded author `userId`'s (a database from before ownership, claimed). */
export async function claimUnowned(db: Dexie, userId: string): Promise<void> {
  const unowned = await outboxTable(db)
    .filter((op) => op.owner === undefined)
    .toArray();
  await outboxTable(db).bulkPut(unowned.map((op) => withState(op, opState(op), userId)));
}

/** Gives `userId` back her held ops, where they were before; returns them. */
export async function releaseHeld(db: Dexie, userId: string): Promise<PendingOpRow[]> {
  const mine = (await heldOps(db)).filter((op) => op.owner === userId).map((op) => withState(op, releaseOp(opState(op))));
  await outboxTable(db).bulkPut(mine);
  return mine;
}

/** Holds every active op for its author (`userId` when none is recorded): she signed out keeping them. */
export async function holdActive(db: Dexie, userId: string, reason: HeldReason): Promise<void> {
  const active = await outboxTable(db).filter(isActive).toArray();
  await outboxTable(db).bulkPut(active.map((op) => withState(op, holdOp(opState(op), reason), op.owner ?? userId)));
}

/** Drops every active op (she signed out discarding them). */
export async function dropActive(db: Dexie): Promise<void> {
  await outboxTable(db).filter(isActive).delete();
}

/** Marks every queued op failed with `reason` (the user may no longer write); returns them. */
export async function failQueued(db: Dexie, reason: OpRejection): Promise<PendingOpRow[]> {
  const queued = (await outboxTable(db).where('status').equals(STORED_STATUS.pending).toArray()).filter((op) => isQueued(opState(op)));
  await outboxTable(db).bulkPut(queued.map((op) => ({ ...withState(op, failOp(reason)), attempts: op.attempts + 1 })));
  return queued;
}
