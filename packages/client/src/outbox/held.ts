/**
 * Whose ops the outbox holds (PROTOCOL.md section 6, "Users"): each op's
 * author (`owner`), and the ops held for their author while the database is
 * another user's. Every function runs inside the caller's transaction when
 * there is one (it must list `OUTBOX_SCOPE`). Ops of no recorded author were
 * written before ownership, or by an engine without `userId`: the owner's.
 */
import type { Dexie } from 'dexie';
import { failOp, holdForAuthor, opState, releaseOp, stateColumns, STORED_STATUS, waitsForAuthor, type AuthorHold, type OpFailure, type OpState } from './op-state.js';
import { isActive, outboxTable, type PendingOpRow } from './table.js';

/** `op` in `state`, with its author. */
function withState(op: PendingOpRow, state: OpState, owner = op.owner): PendingOpRow {
  const row: PendingOpRow = { ...op, ...stateColumns(state) };
  if (owner !== undefined) row.owner = owner;
  return row;
}

/** The reason an op waits for its author. */
function authorHold(code: AuthorHold, owner: string): { code: AuthorHold; message: string } {
  return { code, message: code === 'other_user' ? `written by ${owner}, who is not signed in` : `${owner} signed out keeping it` };
}

/** Holds every op not written by `userId` (`previousOwner`'s when none is recorded), unless it waits for its author already; returns how many. */
export async function holdOthers(db: Dexie, userId: string, previousOwner: string): Promise<number> {
  const others = (await outboxTable(db).toArray()).filter((op) => (op.owner ?? previousOwner) !== userId && !waitsForAuthor(opState(op)));
  await outboxTable(db).bulkPut(
    others.map((op) => {
      const author = op.owner ?? previousOwner;
      return withState(op, holdForAuthor(opState(op), authorHold('other_user', author)), author);
    }),
  );
  return others.length;
}

/** Makes the ops of no recorded author `userId`'s (a database from before ownership, claimed). */
export async function claimUnowned(db: Dexie, userId: string): Promise<void> {
  const unowned = await outboxTable(db)
    .filter((op) => op.owner === undefined)
    .toArray();
  await outboxTable(db).bulkPut(unowned.map((op) => ({ ...op, owner: userId })));
}

/** Gives `userId` back the ops held for her, each to where it was; returns them. */
export async function giveBackHeld(db: Dexie, userId: string): Promise<PendingOpRow[]> {
  const held = await outboxTable(db).where('status').equals(STORED_STATUS.held).toArray();
  const mine = held.filter((op) => op.owner === userId && waitsForAuthor(opState(op))).map((op) => withState(op, releaseOp(opState(op))));
  await outboxTable(db).bulkPut(mine);
  return mine;
}

/** Holds every active op for its author (`userId` when none is recorded): she signed out keeping them. */
export async function holdActive(db: Dexie, userId: string): Promise<void> {
  const active = await outboxTable(db).filter(isActive).toArray();
  await outboxTable(db).bulkPut(
    active.map((op) => {
      const author = op.owner ?? userId;
      return withState(op, holdForAuthor(opState(op), authorHold('signed_out', author)), author);
    }),
  );
}

/** Drops every active op (she signed out discarding them). */
export async function dropActive(db: Dexie): Promise<void> {
  await outboxTable(db).filter(isActive).delete();
}

/** Marks every queued op failed with `reason` (the user may no longer write); returns them. */
export async function failQueued(db: Dexie, reason: OpFailure): Promise<PendingOpRow[]> {
  const queued = await outboxTable(db).where('status').equals(STORED_STATUS.pending).toArray();
  await outboxTable(db).bulkPut(queued.map((op) => ({ ...withState(op, failOp(reason)), attempts: op.attempts + 1 })));
  return queued;
}
