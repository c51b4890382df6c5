/** Push: every per-op status, idempotency, LWW, tombstones, and batch rules. */
import { describe, expect, test } from 'vitest';
import { api } from '../convex/_generated/api.js';
import { DEVICE_B, as, del, errorOf, newBackend, put, workspaceWith } from './setup.js';

async function setup() {
  const t = newBackend();
  const workspace = await workspaceWith(t, 'alice');
  const alice = as(t, 'alice');
  const push = (ops: unknown[]) => alice.mutation(api.sync.push, { workspace_id: workspace, ops });
  const record = (table: string, pk: string) =>
    alice.query(api.sync.getRecord, { workspace_id: workspace, table_name: table, pk });
  const pullAll = async () => (await alice.query(api.sync.pull, { workspace_id: workspace, cursor: 0 })).changes;
  return { t, workspace, alice, push, record, pullAll };
}

describe('applied', () => {
  test('applied ops get gap-free server versions in request order', async () => {
    const { push, pullAll } = await setup();
    const first = await push([put('threads', 't1'), put('messages', 'm1', { thread_id: 't1' }), put('kv', 'k1')]);
    expect(first.results.map((r) => r.status)).toEqual(['applied', 'applied', 'applied']);
    expect(first.results.map((r) => (r.status === 'applied' ? r.server_version : null))).toEqual([1, 2, 3]);
    expect(first.server_version).toBe(3);
    expect(typeof first.server_time).toBe('number');
    const second = await push([put('kv', 'k2')]);
    expect(second.results[0]).toMatchObject({ status: 'applied', server_version: 4 });
    expect((await pullAll()).map((c) => c.server_version)).toEqual([1, 2, 3, 4]);
  });

  test('the stored record is the op, payload unchanged, in the wire shape', async () => {
    const { push, record } = await setup();
    const op = put('messages', 'm1', { thread_id: 't1', role: 'user', data: 'hi', index: 0, order_key: 'x' }, { clock: 3 });
    await push([op]);
    expect(await record('messages', 'm1')).toEqual({
      table_name: 'messages',
      pk: 'm1',
      payload: op.payload,
      deleted: false,
      clock: 3,
      hlc: op.hlc,
      op_id: op.op_id,
      server_version: 1,
      committed_at: expect.any(Number),
    });
  });

  test('an op later in a batch sees the effect of earlier ones', async () => {
    const { push, record } = await setup();
    const older = put('kv', 'k', { value: 1 }, { clock: 1 });
    const newer = put('kv', 'k', { value: 2 }, { clock: 2 });
    const stale = put('kv', 'k', { value: 0 }, { clock: 1, counter: 5 });
    const response = await push([older, newer, stale]);
    expect(response.results.map((r) => r.status)).toEqual(['applied', 'applied', 'superseded']);
    const winner = response.results[2]!;
    expect(winner.status === 'superseded' && winner.winner).toEqual({
      clock: 2,
      hlc: newer.hlc,
      op_id: newer.op_id,
      server_version: 2,
      deleted: false,
      payload: newer.payload,
    });
    expect((await record('kv', 'k'))?.payload).toEqual({ id: 'k', value: 2 });
  });
});

describe('duplicate', () => {
  test('pushing the same batch twice changes nothing and reports the original versions', async () => {
    const { push, pullAll } = await setup();
    const batch = [put('threads', 't1'), put('threads', 't2'), del('threads', 't1')];
    const first = await push(batch);
    const again = await push(batch);
    expect(again.results).toEqual([
      { op_id: batch[0]!.op_id, status: 'duplicate', server_version: 1 },
      { op_id: batch[1]!.op_id, status: 'duplicate', server_version: 2 },
      { op_id: batch[2]!.op_id, status: 'duplicate', server_version: 3 },
    ]);
    expect(again.server_version).toBe(first.server_version);
    expect(await pullAll()).toHaveLength(3);
  });

  test('the same op_id is a duplicate even when its stamp would now lose', async () => {
    const { push } = await setup();
    const op = put('kv', 'k', {}, { clock: 1 });
    await push([op]);
    await push([put('kv', 'k', {}, { clock: 9 })]);
    expect((await push([op])).results[0]).toEqual({ op_id: op.op_id, status: 'duplicate', server_version: 1 });
  });

  test('the same stamp is a duplicate after its op-id record was purged', async () => {
    const { t, push } = await setup();
    const op = put('kv', 'k');
    await push([op]);
    await t.run(async (ctx) => {
      for (const row of await ctx.db.query('applied_ops').collect()) await ctx.db.delete(row._id);
    });
    expect((await push([op])).results[0]).toEqual({ op_id: op.op_id, status: 'duplicate', server_version: 1 });
  });

  test('a repeated op within one batch is a duplicate of the first', async () => {
    const { push } = await setup();
    const op = put('kv', 'k');
    expect((await push([op, op])).results.map((r) => r.status)).toEqual(['applied', 'duplicate']);
  });
});

describe('superseded and LWW', () => {
  test('a lower clock loses whatever its hlc, and gets the winner whole', async () => {
    const { push, record } = await setup();
    const winner = put('threads', 't1', { title: 'new' }, { clock: 5, ms: 1_000 });
    await push([winner]);
    const loser = put('threads', 't1', { title: 'old' }, { clock: 4, ms: Date.now() - 10 });
    const result = (await push([loser])).results[0]!;
    expect(result).toEqual({
      op_id: loser.op_id,
      status: 'superseded',
      winner: { clock: 5, hlc: winner.hlc, op_id: winner.op_id, server_version: 1, deleted: false, payload: winner.payload },
    });
    expect((await record('threads', 't1'))?.payload).toEqual({ id: 't1', title: 'new' });
  });

  test('equal clocks: the greater hlc wins, then the greater op_id', async () => {
    const { push, record } = await setup();
    await push([put('kv', 'a', { v: 1 }, { clock: 2, ms: 2_000 })]);
    expect((await push([put('kv', 'a', { v: 2 }, { clock: 2, ms: 3_000 })])).results[0]?.status).toBe('applied');
    expect((await push([put('kv', 'a', { v: 3 }, { clock: 2, ms: 2_500 })])).results[0]?.status).toBe('superseded');
    const hlcTie = { clock: 2, ms: 3_000 };
    const low = put('kv', 'b', { v: 'low' }, { ...hlcTie, op_id: '10000000-0000-4000-8000-000000000000' });
    const high = put('kv', 'b', { v: 'high' }, { ...hlcTie, op_id: 'f0000000-0000-4000-8000-000000000000' });
    await push([high]);
    expect((await push([low])).results[0]?.status).toBe('superseded');
    expect((await record('kv', 'b'))?.payload).toEqual({ id: 'b', v: 'high' });
  });

  test('a delete is an op like any other: it wins by a higher clock and leaves a tombstone', async () => {
    const { push, record, pullAll } = await setup();
    await push([put('threads', 't1', { title: 'x' }, { clock: 1 })]);
    const deletion = del('threads', 't1', { clock: 2 });
    expect((await push([deletion])).results[0]?.status).toBe('applied');
    expect(await record('threads', 't1')).toMatchObject({ deleted: true, clock: 2, op_id: deletion.op_id, payload: null });
    expect((await pullAll()).at(-1)).toMatchObject({ operation: 'delete', pk: 't1', payload: null });
  });

  test('tombstones keep their stamps: a stale put never resurrects the record', async () => {
    const { push, record } = await setup();
    await push([put('threads', 't1', {}, { clock: 1 }), del('threads', 't1', { clock: 2, device: DEVICE_B })]);
    const stale = put('threads', 't1', { title: 'back' }, { clock: 1, counter: 99 });
    const result = (await push([stale])).results[0]!;
    expect(result.status).toBe('superseded');
    expect(result.status === 'superseded' && result.winner.deleted).toBe(true);
    expect((await record('threads', 't1'))?.deleted).toBe(true);
  });

  test('a delete loses to a put with a higher clock', async () => {
    const { push, record } = await setup();
    await push([put('kv', 'k', {}, { clock: 3 })]);
    expect((await push([del('kv', 'k', { clock: 2 })])).results[0]?.status).toBe('superseded');
    expect((await record('kv', 'k'))?.deleted).toBe(false);
  });

  test('a put whose payload says deleted: true is stored as a tombstone', async () => {
    const { push, record } = await setup();
    await push([put('messages', 'm1', { deleted: true, deleted_at: 5 })]);
    expect(await record('messages', 'm1')).toMatchObject({ deleted: true, payload: { id: 'm1', deleted: true, deleted_at: 5 } });
  });

  test('a delete carrying its tombstone row stores the row', async () => {
    const { push, record } = await setup();
    const op = { ...del('posts', 'p1'), payload: { id: 'p1', deleted: true, deleted_at: 7, title: 'gone' } };
    await push([op]);
    expect(await record('posts', 'p1')).toMatchObject({ deleted: true, payload: op.payload });
  });
});

describe('rejected', () => {
  test('an invalid op is rejected with its code while the rest of the batch applies', async () => {
    const { push } = await setup();
    const good = put('kv', 'k');
    const response = await push([
      { ...put('nope', 'x') },
      good,
      { ...put('kv', 'k2'), pk: '' },
      { ...put('kv', 'k3'), payload: { id: 'other' } },
      'not an op',
    ]);
    expect(response.results.map((r) => r.status)).toEqual(['rejected', 'applied', 'rejected', 'rejected', 'rejected']);
    expect(response.results.map((r) => (r.status === 'rejected' ? r.error.code : null))).toEqual([
      'unknown_table',
      null,
      'invalid_pk',
      'pk_mismatch',
      'invalid_op',
    ]);
    expect(response.results[1]).toMatchObject({ op_id: good.op_id, server_version: 1 });
    expect(response.results[4]?.op_id).toBe('');
  });

  test('clock_skew is retryable; every other rejection is permanent', async () => {
    const { push } = await setup();
    const future = put('kv', 'k', {}, { ms: Date.now() + 10 * 60_000 });
    const badHlc = { ...put('kv', 'k'), hlc: 'nonsense' };
    const [skew, invalid] = (await push([future, badHlc])).results;
    expect(skew).toMatchObject({ status: 'rejected', error: { code: 'clock_skew', retryable: true } });
    expect(invalid).toMatchObject({ status: 'rejected', error: { code: 'invalid_hlc' } });
    expect(invalid?.status === 'rejected' && invalid.error.retryable).toBeFalsy();
  });

  test('a batch of only rejected ops leaves the counter alone', async () => {
    const { push } = await setup();
    const response = await push([{ ...put('kv', 'k'), clock: -1 }]);
    expect(response.server_version).toBe(0);
    expect((await push([put('kv', 'k')])).results[0]).toMatchObject({ server_version: 1 });
  });
});

describe('batches and workspaces', () => {
  test('more than 500 ops is refused whole with batch_too_large', async () => {
    const { push, pullAll } = await setup();
    const ops = Array.from({ length: 501 }, (_, i) => put('kv', `k${i}`));
    expect(await errorOf(push(ops))).toMatchObject({ code: 'batch_too_large', field: 'ops' });
    expect(await pullAll()).toHaveLength(0);
    expect((await push(ops.slice(0, 500))).results.every((r) => r.status === 'applied')).toBe(true);
  });

  test('workspaces are independent: the same op and pk apply in each', async () => {
    const { t, push } = await setup();
    const other = await workspaceWith(t, 'alice');
    const op = put('kv', 'k');
    await push([op]);
    const elsewhere = await as(t, 'alice').mutation(api.sync.push, { workspace_id: other, ops: [op] });
    expect(elsewhere.results[0]).toMatchObject({ status: 'applied', server_version: 1 });
  });
});
