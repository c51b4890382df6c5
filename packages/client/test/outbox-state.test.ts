/**
 * An outbox op's state and its transitions (`src/outbox/op-state.ts`), one
 * test per rule, and the stored format: rows written by the current release
 * read as the state they meant.
 */
import { Dexie } from 'dexie';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import type { OpRejection, OpResult } from '@or3/sync-protocol';
import {
  ADOPTED,
  CAPTURED,
  failOp,
  holdForAuthor,
  holdOp,
  judgeResult,
  waitsForAuthor,
  newOp,
  opState,
  outbox,
  OUTBOX_STORES,
  releaseOp,
  retryOp,
  sendOp,
  stateColumns,
  takesLaterWrite,
  type OpState,
  type PendingOpRow,
} from '../src/outbox/index.js';

const SKEW: OpRejection = { code: 'clock_skew', message: 'ahead', retryable: true };
const INVALID: OpRejection = { code: 'invalid_pk', message: 'bad key', field: 'pk' };
const UNSYNCED_TABLE = { code: 'unknown_table', message: 'not synced by this server' } as const;

function op(overrides: Partial<PendingOpRow> = {}): PendingOpRow {
  const base = { op_id: 'op-1', table_name: 'threads', operation: 'put' as const, pk: 't1', payload: { id: 't1' }, clock: 1, hlc: 'h', device_id: 'd' };
  return { ...newOp(base, 0, null), ...overrides };
}

describe('op states and transitions', () => {
  it('a captured op is pending', () => {
    expect(CAPTURED).toEqual({ kind: 'pending' });
    expect(opState(op())).toEqual({ kind: 'pending' });
  });

  it('coalescing: only a never-sent op takes a later write of its record', () => {
    expect(takesLaterWrite({ kind: 'pending' })).toBe(true);
    expect(takesLaterWrite({ kind: 'sent' })).toBe(false);
    expect(takesLaterWrite(failOp(INVALID))).toBe(false);
  });

  it('taking an op into a push makes it sent, and a sent op stays sent', () => {
    expect(sendOp({ kind: 'pending' })).toEqual({ kind: 'sent' });
    expect(sendOp({ kind: 'sent' })).toEqual({ kind: 'sent' });
  });

  it('a failed op keeps its reason and is never sent again', () => {
    const failed = failOp(INVALID);
    expect(failed).toEqual({ kind: 'failed', reason: INVALID });
    expect(sendOp(failed)).toBe(failed);
  });

  it('a held op is never sent nor coalesced, and is released to what it was', () => {
    const heldPending = holdOp({ kind: 'pending' }, UNSYNCED_TABLE);
    const heldSent = holdOp({ kind: 'sent' }, UNSYNCED_TABLE);
    expect(heldPending).toEqual({ kind: 'held', reason: UNSYNCED_TABLE, wasSent: false });
    expect(sendOp(heldPending)).toBe(heldPending);
    expect(takesLaterWrite(heldPending)).toBe(false);
    expect(releaseOp(heldPending)).toEqual({ kind: 'pending' });
    expect(releaseOp(heldSent)).toEqual({ kind: 'sent' });
  });

  it('a failed op is not held, and a held op keeps its first reason', () => {
    const failed = failOp(INVALID);
    expect(holdOp(failed, UNSYNCED_TABLE)).toBe(failed);
    const held = holdOp({ kind: 'pending' }, UNSYNCED_TABLE);
    expect(holdOp(held, { code: 'other_user', message: 'x' })).toBe(held);
  });

  it('applied, duplicate and superseded answers settle the op', () => {
    const answers: OpResult[] = [
      { op_id: 'a', status: 'applied', server_version: 3 },
      { op_id: 'a', status: 'duplicate' },
      { op_id: 'a', status: 'superseded', winner: { payload: null, deleted: true, clock: 2, hlc: 'x', op_id: 'b', server_version: 2 } },
    ];
    for (const answer of answers) expect(judgeResult(answer)).toEqual({ kind: 'settle', result: answer });
  });

  it('a retryable rejection (clock_skew) re-stamps the op', () => {
    expect(judgeResult({ op_id: 'a', status: 'rejected', error: SKEW })).toEqual({ kind: 'restamp' });
  });

  it('a configuration mismatch (unknown_table, pk_mismatch) holds the op with the server reason', () => {
    expect(judgeResult({ op_id: 'a', status: 'rejected', error: UNSYNCED_TABLE })).toEqual({ kind: 'hold', reason: UNSYNCED_TABLE });
    const pk = { code: 'pk_mismatch', message: 'keyed by hash' } as const;
    expect(judgeResult({ op_id: 'a', status: 'rejected', error: pk })).toEqual({ kind: 'hold', reason: pk });
  });

  it('any other rejection fails the op with the server reason', () => {
    expect(judgeResult({ op_id: 'a', status: 'rejected', error: INVALID })).toEqual({ kind: 'fail', reason: INVALID });
  });

  it('retrying a failed op makes it pending again; any other state is unchanged', () => {
    expect(retryOp(failOp(INVALID))).toEqual({ kind: 'pending' });
    expect(retryOp({ kind: 'sent' })).toEqual({ kind: 'sent' });
    expect(retryOp(holdOp(CAPTURED, UNSYNCED_TABLE))).toEqual(holdOp(CAPTURED, UNSYNCED_TABLE));
  });
});

describe('ops held for their author (another user\'s)', () => {
  const OTHER_USER = { code: 'other_user', message: 'written by alice, who is not signed in' } as const;

  it('an op in any state waits for its author, over any other hold, and goes back to where it was (a failed one is tried again)', () => {
    expect(holdForAuthor({ kind: 'sent' }, OTHER_USER)).toEqual({ kind: 'held', reason: OTHER_USER, wasSent: true });
    expect(releaseOp(holdForAuthor({ kind: 'pending' }, OTHER_USER))).toEqual({ kind: 'pending' });
    expect(releaseOp(holdForAuthor(failOp(INVALID), OTHER_USER))).toEqual({ kind: 'sent' });
    expect(waitsForAuthor(holdForAuthor(holdOp({ kind: 'pending' }, UNSYNCED_TABLE), OTHER_USER))).toBe(true);
    expect(waitsForAuthor(holdOp({ kind: 'pending' }, UNSYNCED_TABLE))).toBe(false);
  });

  it('they are never batched, counted as queued or a record\'s ops; a batch takes only its user\'s ops; she gets hers back', async () => {
    const db = new Dexie('outbox-authors', { indexedDB: new IDBFactory(), IDBKeyRange });
    db.version(1).stores(OUTBOX_STORES);
    await db.open();
    await db.table('_or3sync_outbox').bulkAdd([
      op({ op_id: 'a', pk: 'x', owner: 'alice', ...stateColumns(holdForAuthor({ kind: 'pending' }, OTHER_USER)) }),
      op({ op_id: 'b', pk: 'x', owner: 'bob' }),
      op({ op_id: 'c', pk: 'y', owner: 'carol' }),
    ]);
    expect(await outbox.countQueued(db)).toBe(2);
    expect(await outbox.countActive(db)).toBe(2);
    expect((await outbox.opsOfRecords(db, 'threads', ['x'])).map((row) => row.op_id)).toEqual(['b']);
    expect((await outbox.takeBatch(db, 10, 'bob')).map((row) => row.op_id)).toEqual(['b']);
    expect((await outbox.giveBackHeld(db, 'alice')).map((row) => [row.op_id, opState(row)])).toEqual([['a', { kind: 'pending' }]]);
    expect(await outbox.countHeld(db)).toBe(0);
    db.close();
  });
});

describe('taking a batch', () => {
  it('a batch of size n is the first n ops of its user, past other users\' ops ahead of them; an adopted op is taken as it is (sent)', async () => {
    const db = new Dexie('outbox-batch', { indexedDB: new IDBFactory(), IDBKeyRange });
    db.version(1).stores(OUTBOX_STORES);
    await db.open();
    await db.table('_or3sync_outbox').bulkAdd([
      op({ op_id: 'c1', pk: 'c1', owner: 'carol' }),
      op({ op_id: 'c2', pk: 'c2', owner: 'carol' }),
      op({ op_id: 'b1', pk: 'b1', owner: 'bob' }),
      op({ op_id: 'b2', pk: 'b2', owner: 'bob', ...stateColumns(ADOPTED) }),
      op({ op_id: 'b3', pk: 'b3', owner: 'bob' }),
    ]);
    expect((await outbox.takeBatch(db, 2, 'bob')).map((row) => row.op_id)).toEqual(['b1', 'b2']);
    const stored = await db.table<PendingOpRow>('_or3sync_outbox').orderBy('seq').toArray();
    expect(stored.map((row) => [row.op_id, opState(row).kind])).toEqual([
      ['c1', 'pending'],
      ['c2', 'pending'],
      ['b1', 'sent'],
      ['b2', 'sent'],
      ['b3', 'pending'],
    ]);
    expect((await outbox.takeBatch(db, 2, 'carol')).map((row) => row.op_id)).toEqual(['c1', 'c2']);
    db.close();
  });
});

describe('the stored format', () => {
  it('every state is stored in the status, sent and error columns and read back as itself', () => {
    const states: OpState[] = [
      { kind: 'pending' },
      { kind: 'sent' },
      failOp(INVALID),
      holdOp({ kind: 'pending' }, UNSYNCED_TABLE),
      holdOp({ kind: 'sent' }, UNSYNCED_TABLE),
    ];
    for (const state of states) expect(opState(stateColumns(state))).toEqual(state);
  });

  it('rows written by the current release read as the state they meant', () => {
    expect(opState({ status: 'pending', sent: 0, error: null })).toEqual({ kind: 'pending' });
    expect(opState({ status: 'pending', sent: 1, error: null })).toEqual({ kind: 'sent' });
    expect(opState({ status: 'failed', sent: 0, error: INVALID })).toEqual({ kind: 'failed', reason: INVALID });
  });

  it('a row of an older layout without the sent flag counts as sent: it never coalesces', () => {
    const legacy = { status: 'pending', error: null } as unknown as PendingOpRow;
    expect(opState(legacy)).toEqual({ kind: 'sent' });
  });

  it('an outbox written in the stored format is counted, batched and failed by its states', async () => {
    const db = new Dexie('outbox-format', { indexedDB: new IDBFactory(), IDBKeyRange });
    db.version(1).stores(OUTBOX_STORES);
    await db.open();
    // Rows exactly as the current release writes them.
    await db.table('_or3sync_outbox').bulkAdd([
      op({ op_id: 'p', pk: 'a', status: 'pending', sent: 0, error: null }),
      op({ op_id: 's', pk: 'b', status: 'pending', sent: 1, error: null }),
      op({ op_id: 'f', pk: 'c', status: 'failed', sent: 1, error: INVALID }),
    ]);
    expect(await outbox.countQueued(db)).toBe(2);
    expect(await outbox.countFailed(db)).toBe(1);
    expect((await outbox.failedOps(db)).map((row) => opState(row))).toEqual([{ kind: 'failed', reason: INVALID }]);
    const batch = await outbox.takeBatch(db, 10, null);
    expect(batch.map((row) => row.op_id)).toEqual(['p', 's']);
    expect((await outbox.activeOps(db)).map((row) => [row.op_id, opState(row).kind])).toEqual([
      ['p', 'sent'],
      ['s', 'sent'],
      ['f', 'failed'],
    ]);
    await outbox.markFailed(db, batch[0]!, INVALID);
    expect(await outbox.countQueued(db)).toBe(1);
    expect((await outbox.findFailed(db, 'p'))?.attempts).toBe(1);
    db.close();
  });

  it('held ops are neither queued nor batched until released', async () => {
    const db = new Dexie('outbox-held', { indexedDB: new IDBFactory(), IDBKeyRange });
    db.version(1).stores(OUTBOX_STORES);
    await db.open();
    await db.table('_or3sync_outbox').bulkAdd([op({ op_id: 'a', pk: 'a' }), op({ op_id: 'b', pk: 'b' })]);
    const [first] = await outbox.activeOps(db);
    await outbox.markHeld(db, first!, UNSYNCED_TABLE);
    expect(await outbox.countQueued(db)).toBe(1);
    expect(await outbox.countHeld(db)).toBe(1);
    expect((await outbox.heldOps(db)).map((row) => opState(row))).toEqual([{ kind: 'held', reason: UNSYNCED_TABLE, wasSent: false }]);
    expect((await outbox.takeBatch(db, 10, null)).map((row) => row.op_id)).toEqual(['b']);
    expect(await outbox.releaseHeld(db, (_, reason) => reason.code === 'other_user')).toBe(0);
    expect(await outbox.releaseHeld(db, (_, reason) => reason.code === 'unknown_table')).toBe(1);
    expect(await outbox.countHeld(db)).toBe(0);
    // Released in its outbox position, ahead of the sent op that waits for its answer.
    expect((await outbox.takeBatch(db, 10, null)).map((row) => row.op_id)).toEqual(['a', 'b']);
    db.close();
  });
});
