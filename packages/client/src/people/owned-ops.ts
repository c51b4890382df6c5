/**
 * The outbox as ownership sees it: each op's author (`owner`) and the `held`
 * state of ops whose author is not the user the database belongs to now. Held
 * ops are never pushed and never shown; their author gets them back.
 */
import type { Dexie, Table } from 'dexie';
import { OUTBOX_TABLE, type PendingOpRow } from '../schema.js';

/** Why an op is held: another user opened the database, or its author signed out keeping it (`unsynced: 'hold'`). */
export type HeldReason = 'other_user' | 'signed_out';

/** An outbox row with its author. */
export interface OwnedOpRow extends Omit<PendingOpRow, 'status'> {
  status: PendingOpRow['status'] | 'held';
  /** The user who wrote the op; absent on ops written before ownership. */
  owner?: string;
  /** Set while the op is held. */
  held_reason?: HeldReason;
}

/** The outbox table, typed with authors. */
export function ownedOutbox(db: Dexie): Table<OwnedOpRow, number> {
  return db.table<OwnedOpRow, number>(OUTBOX_TABLE);
}

/** `op` held for `owner`, its author. */
export function held(op: OwnedOpRow, owner: string, reason: HeldReason): OwnedOpRow {
  return { ...op, status: 'held', owner, held_reason: reason };
}

/** A held op given back to its author: pending again (a failed one is tried again and fails again if it must). */
export function released(op: OwnedOpRow): OwnedOpRow {
  const { held_reason: _reason, ...rest } = op;
  return { ...rest, status: 'pending' };
}

/** Held ops, oldest first: other users' writes kept for them (`engine.heldOps()`). */
export function heldOps(db: Dexie): Promise<OwnedOpRow[]> {
  return ownedOutbox(db).where('status').equals('held').toArray();
}
