/** The push loop's rules, against a scripted provider. */
import { afterEach, describe, expect, it } from 'vitest';
import type { SyncEngine } from '../src/engine.js';
import type { ErrorEvent, RetryEvent, SyncStats } from '../src/events.js';
import { parseHlc, type OpResult, type PushOp } from '@or3/sync-protocol';
import type { PendingOpRow } from '../src/outbox/index.js';
import type { SyncRunRow } from '../src/schema.js';
import { SyncProviderError } from '../src/provider.js';
import { makeDevice } from './support/devices.js';
import { applied, ScriptedProvider } from './support/scripted-provider.js';

const opened: SyncEngine[] = [];
afterEach(async () => {
  for (const engine of opened.splice(0)) await engine.close();
});

async function setup(overrides: Parameters<ReturnType<typeof makeDevice>['open']>[0] = {}) {
  const provider = new ScriptedProvider();
  const engine = await makeDevice('ws-push', provider).open(overrides);
  opened.push(engine);
  await engine.sync(); // fresh device: empty snapshot, cursor 0
  provider.pushes = [];
  return { provider, engine, db: engine.db };
}

async function outbox(engine: SyncEngine): Promise<PendingOpRow[]> {
  return engine.db.table<PendingOpRow>('_or3sync_outbox').orderBy('seq').toArray();
}

describe('push loop', () => {
  it('pushes in batches of at most 100, in outbox order', async () => {
    const { provider, engine, db } = await setup();
    await db.table('threads').bulkPut(Array.from({ length: 250 }, (_, i) => ({ id: `t${String(i).padStart(3, '0')}` })));
    const run = await engine.sync();
    expect(run).toMatchObject({ pushed: 250, error: null });
    expect(provider.pushes.map((b) => b.length)).toEqual([100, 100, 50]);
    expect(provider.pushes.flat().map((o) => o.pk)).toEqual(Array.from({ length: 250 }, (_, i) => `t${String(i).padStart(3, '0')}`));
    expect(await outbox(engine)).toEqual([]);
  });

  it('a backlog goes in batches of the server\'s max_ops_per_push once a batch comes back full', async () => {
    const { provider, engine, db } = await setup();
    provider.maxOpsPerPush = 300;
    await db.table('threads').bulkPut(Array.from({ length: 1000 }, (_, i) => ({ id: `t${String(i).padStart(4, '0')}` })));
    expect(await engine.sync()).toMatchObject({ pushed: 1000, error: null });
    expect(provider.pushes.map((b) => b.length)).toEqual([100, 300, 300, 300]);
    expect(provider.pushes.flat().map((o) => o.pk)).toEqual(Array.from({ length: 1000 }, (_, i) => `t${String(i).padStart(4, '0')}`));
    expect(await outbox(engine)).toEqual([]);
  });

  it('a pushBatchSize the app chose is kept for a backlog too', async () => {
    const { provider, engine, db } = await setup({ pushBatchSize: 100 });
    provider.maxOpsPerPush = 300;
    await db.table('threads').bulkPut(Array.from({ length: 250 }, (_, i) => ({ id: `t${String(i).padStart(3, '0')}` })));
    expect(await engine.sync()).toMatchObject({ pushed: 250, error: null });
    expect(provider.pushes.map((b) => b.length)).toEqual([100, 100, 50]);
  });

  it('a batch settled in runs leaves the outbox run by run; the op rejected and the op unanswered between them stay', async () => {
    const { provider, engine, db } = await setup();
    const pk = (i: number) => `t${String(i).padStart(2, '0')}`;
    provider.onPush = (ops, call) => ({
      // The first answer rejects t20 and leaves t30 unanswered (it is sent again).
      results: ops.flatMap((op, i): OpResult[] =>
        call === 1 && op.pk === pk(30)
          ? []
          : [call === 1 && op.pk === pk(20) ? { op_id: op.op_id, status: 'rejected', error: { code: 'invalid_pk', message: 'no' } } : applied(op, i + 1)],
      ),
      server_version: ops.length,
    });
    await db.table('threads').bulkPut(Array.from({ length: 40 }, (_, i) => ({ id: pk(i) })));
    await engine.sync();
    expect(provider.pushes.map((b) => b.length)).toEqual([40, 1]);
    expect(provider.pushes[1]!.map((o) => o.pk)).toEqual([pk(30)]);
    expect((await outbox(engine)).map((op) => [op.pk, op.status])).toEqual([[pk(20), 'failed']]);
  });

  it('a rejected op is kept as failed, reported, and never blocks the ops behind it', async () => {
    const { provider, engine, db } = await setup();
    provider.onPush = (ops) => ({
      results: ops.map((op, i): OpResult =>
        op.pk === 'bad'
          ? { op_id: op.op_id, status: 'rejected', error: { code: 'invalid_pk', message: 'no' } }
          : applied(op, i + 1),
      ),
      server_version: ops.length,
    });
    const errors: ErrorEvent[] = [];
    engine.on('sync.error:action', (e) => errors.push(e));
    await db.table('threads').bulkPut([{ id: 'a' }, { id: 'bad' }, { id: 'c' }]);
    await engine.sync();
    await db.table('threads').put({ id: 'd' });
    await engine.sync();
    expect(provider.pushes.map((b) => b.map((o) => o.pk))).toEqual([['a', 'bad', 'c'], ['d']]);
    const left = await outbox(engine);
    expect(left).toEqual([expect.objectContaining({ pk: 'bad', status: 'failed', error: { code: 'invalid_pk', message: 'no' } })]);
    expect(await engine.failedOps()).toHaveLength(1);
    expect(errors).toEqual([expect.objectContaining({ code: 'invalid_pk', opId: left[0]!.op_id, tableName: 'threads', pk: 'bad' })]);
  });

  it('discarding a failed op stops pushing it and keeps the local row, even one the server never had', async () => {
    const { provider, engine, db } = await setup();
    provider.onPush = (ops) => ({
      results: ops.map((op): OpResult => ({ op_id: op.op_id, status: 'rejected', error: { code: 'invalid_op', message: 'no' } })),
      server_version: 0,
    });
    await db.table('threads').put({ id: 'unknown', title: 'never synced' });
    await engine.sync();
    const [failed] = await engine.failedOps();
    await engine.discardFailedOp(failed!.op_id);
    expect(await db.table('threads').get('unknown')).toMatchObject({ title: 'never synced' });
    expect(await outbox(engine)).toEqual([]);
    await engine.sync();
    expect(provider.pushes).toHaveLength(1);
  });

  it('retrying a failed op pushes it again, and it leaves the outbox once the server takes it', async () => {
    const { provider, engine, db } = await setup();
    let reject = true;
    provider.onPush = (ops) => ({
      results: ops.map((op): OpResult =>
        reject ? { op_id: op.op_id, status: 'rejected', error: { code: 'invalid_op', message: 'no' } } : { op_id: op.op_id, status: 'applied', server_version: 1 },
      ),
      server_version: 1,
    });
    await db.table('threads').put({ id: 'a' });
    await engine.sync();
    const [failed] = await engine.failedOps();
    expect(engine.status).toMatchObject({ state: 'attention', failed: 1, lastError: expect.objectContaining({ code: 'invalid_op' }) });
    reject = false;
    await engine.retryFailedOp(failed!.op_id);
    await engine.sync();
    expect(provider.pushes.map((batch) => batch.map((op) => op.op_id))).toEqual([[failed!.op_id], [failed!.op_id]]);
    expect(await outbox(engine)).toEqual([]);
    expect(engine.status.state).not.toBe('attention');
  });

  it('restoring the server copy of a failed op puts the server row back, or removes a row the server never had', async () => {
    const { provider, engine, db } = await setup();
    provider.onPush = (ops) => ({
      results: ops.map((op): OpResult => ({ op_id: op.op_id, status: 'rejected', error: { code: 'invalid_op', message: 'no' } })),
      server_version: 0,
    });
    await db.table('threads').put({ id: 'known', title: 'local edit' });
    await db.table('threads').put({ id: 'unknown', title: 'never synced' });
    await engine.sync();
    provider.records.set('threads/known', {
      table_name: 'threads',
      pk: 'known',
      payload: { id: 'known', title: 'server' },
      deleted: false,
      clock: 4,
      hlc: '1732540000000-000000-aaaaaaaaaaaaaaaa',
      op_id: crypto.randomUUID(),
      server_version: 3,
    });
    const failed = await engine.failedOps();
    for (const op of failed) await engine.restoreServerCopy(op.op_id);
    expect(await db.table('threads').get('known')).toMatchObject({ title: 'server', clock: 4 });
    expect(await db.table('threads').get('unknown')).toBeUndefined();
    expect(await outbox(engine)).toEqual([]);
  });

  it('superseded: the op leaves the outbox, the winner is applied, a conflict is reported', async () => {
    const { provider, engine, db } = await setup();
    const winnerHlc = '1732540000000-000009-aaaaaaaaaaaaaaaa';
    provider.onPush = (ops) => ({
      results: ops.map((op): OpResult => ({
        op_id: op.op_id,
        status: 'superseded',
        winner: { clock: 9, hlc: winnerHlc, op_id: crypto.randomUUID(), server_version: 5, deleted: false, payload: { id: op.pk, title: 'theirs' } },
      })),
      server_version: 5,
    });
    const conflicts: unknown[] = [];
    engine.on('sync.conflict:action:detected', (c) => conflicts.push(c));
    await db.table('threads').put({ id: 't1', title: 'mine' });
    await engine.sync();
    expect(await db.table('threads').get('t1')).toMatchObject({ title: 'theirs', clock: 9, hlc: winnerHlc });
    expect(await outbox(engine)).toEqual([]);
    expect(conflicts).toEqual([expect.objectContaining({ pk: 't1', winner: 'remote', remote: expect.objectContaining({ clock: 9 }) })]);
  });

  it('clock_skew is re-stamped with corrected time and pushed again', async () => {
    const skew = 10 * 60_000;
    const { provider, engine, db } = await setup({ now: () => Date.now() + skew });
    const serverNow = () => Date.now();
    provider.onPush = (ops, call) => ({
      results: ops.map((op): OpResult =>
        call === 1
          ? { op_id: op.op_id, status: 'rejected', error: { code: 'clock_skew', message: 'ahead', retryable: true } }
          : applied(op, 1),
      ),
      server_version: 1,
      server_time: serverNow(),
    });
    await db.table('threads').put({ id: 't1' });
    const run = await engine.sync();
    expect(run.error).toBeNull();
    expect(provider.pushes).toHaveLength(2);
    const [first, second] = [provider.pushes[0]![0]!, provider.pushes[1]![0]!];
    expect(second.op_id).toBe(first.op_id);
    expect(parseHlc(first.hlc).ms - Date.now()).toBeGreaterThan(skew - 5_000);
    expect(Math.abs(parseHlc(second.hlc).ms - Date.now())).toBeLessThan(5_000);
    expect(second.payload?.hlc).toBe(second.hlc);
    expect((await db.table('threads').get('t1')).hlc).toBe(second.hlc);
    expect(await outbox(engine)).toEqual([]);
  });

  it('order_key_is_the_hlc_of_the_creating_op: a clock_skew re-stamp of a new message moves its order_key too', async () => {
    // Found by the fault harness (packages/faults): a message created on a fast clock kept the
    // rejected stamp as order_key, so its order_key never matched the op that created it.
    const skew = 10 * 60_000;
    const { provider, engine, db } = await setup({ now: () => Date.now() + skew });
    provider.onPush = (ops, call) => ({
      results: ops.map((op): OpResult =>
        call === 1
          ? { op_id: op.op_id, status: 'rejected', error: { code: 'clock_skew', message: 'ahead', retryable: true } }
          : applied(op, 1),
      ),
      server_version: 1,
      server_time: Date.now(),
    });
    await db.table('messages').put({ id: 'm1', thread_id: 't1', index: 0, content: 'hi' });
    await db.table('messages').update('m1', { content: 'hi, edited' });
    expect(await engine.sync()).toMatchObject({ error: null });
    const [create, edit] = provider.pushes[1]!;
    expect(create!.pk).toBe('m1');
    expect(create!.payload?.order_key).toBe(create!.hlc);
    expect(edit!.payload?.order_key).toBe(create!.hlc);
    expect((await db.table('messages').get('m1')).order_key).toBe(create!.hlc);
  });

  it('order_key_is_the_creating_hlc_when_two_tabs_restamp_one_batch: each op is re-stamped once, its row with it', async () => {
    // Found by the fault harness (seed 5128): two tabs of a device with a fast clock pushed the
    // same batch; both were told clock_skew, and the second re-stamped its stale copies again, so
    // the server got stamps and order keys the rows never held.
    const skew = 10 * 60_000;
    const provider = new ScriptedProvider();
    const device = makeDevice('ws-two-tab-restamp', provider);
    const tabA = await device.open({ now: () => Date.now() + skew });
    opened.push(tabA);
    await tabA.sync();
    const tabB = await device.open({ now: () => Date.now() + skew });
    opened.push(tabB);
    await tabB.sync();
    provider.pushes = [];
    // The server: the first two pushes (one per tab) meet, both get clock_skew; later ones apply.
    const server = new Map<string, PushOp>();
    const seen = new Set<string>();
    let arrived: () => void = () => {};
    const bothArrived = new Promise<void>((resolve) => (arrived = resolve));
    provider.onPush = async (ops, call) => {
      if (call <= 2) {
        if (call === 2) arrived();
        await Promise.race([bothArrived, new Promise((r) => setTimeout(r, 2_000))]);
        return {
          results: ops.map((op): OpResult => ({ op_id: op.op_id, status: 'rejected', error: { code: 'clock_skew', message: 'ahead', retryable: true } })),
          server_version: 0,
          server_time: Date.now(),
        };
      }
      const results = ops.map((op, i): OpResult => {
        if (seen.has(op.op_id)) return { op_id: op.op_id, status: 'duplicate', server_version: i + 1 };
        seen.add(op.op_id);
        const stored = server.get(op.pk);
        if (!stored || op.clock > stored.clock || (op.clock === stored.clock && op.hlc > stored.hlc)) server.set(op.pk, op);
        return applied(op, i + 1);
      });
      return { results, server_version: ops.length, server_time: Date.now() };
    };
    await tabA.db.table('messages').put({ id: 'm1', thread_id: 't1', index: 0, content: 'hi' });
    await tabA.db.table('messages').update('m1', { content: 'hi, edited' });
    await Promise.all([tabA.sync(), tabB.sync()]);
    await tabA.sync();
    expect(provider.pushes.length).toBeGreaterThanOrEqual(3);
    expect(await outbox(tabA)).toEqual([]);
    const creating = provider.pushes.slice(2).flat().find((op) => op.pk === 'm1' && op.clock === 1)!;
    const final = server.get('m1')!;
    expect(final.payload?.order_key).toBe(creating.hlc);
    const row = await tabA.db.table('messages').get('m1');
    expect({ hlc: row.hlc, order_key: row.order_key }).toEqual({ hlc: final.hlc, order_key: final.payload?.order_key });
  });

  it('order_key_is_the_creating_hlc_when_an_edit_rides_behind_a_skewed_create: a write is stamped above the version it replaces', async () => {
    // Found by the fault harness (seed 8016): a device with a fast clock had a message's create
    // (stamped fast) still pending when another batch's clock_skew re-stamp pulled its clock back.
    // An edit of the message was then stamped at corrected time, below the create it replaced, so
    // the next batch had the create rejected and the edit applied: the server held the rejected
    // stamp as order_key, while the re-stamp moved the device's own row to the new one.
    const skew = 10 * 60_000;
    const { provider, engine, db } = await setup({ now: () => Date.now() + skew, pushBatchSize: 2 });
    const server = new Map<string, PushOp>();
    provider.onPush = (ops, call) => {
      if (call === 2) throw new SyncProviderError({ code: 'network_error', message: 'offline', status: 0 });
      const now = Date.now();
      const results = ops.map((op, i): OpResult => {
        if (parseHlc(op.hlc).ms > now + 5 * 60_000) {
          return { op_id: op.op_id, status: 'rejected', error: { code: 'clock_skew', message: 'ahead', retryable: true } };
        }
        const stored = server.get(op.pk);
        if (!stored || op.clock > stored.clock || (op.clock === stored.clock && op.hlc > stored.hlc)) server.set(op.pk, op);
        return applied(op, i + 1);
      });
      return { results, server_version: ops.length, server_time: now };
    };
    await db.table('threads').bulkPut([{ id: 't1' }, { id: 't2' }]);
    await db.table('messages').put({ id: 'm1', thread_id: 't1', index: 0, content: 'hi' });
    // First batch: the two threads meet clock_skew and are re-stamped (the clock is pulled back);
    // the second request fails, so the message's create stays pending with its fast stamp.
    expect(await engine.sync()).toMatchObject({ error: 'network_error' });
    await db.table('messages').update('m1', { content: 'hi, edited' });
    expect(await engine.sync()).toMatchObject({ error: null });
    expect(await outbox(engine)).toEqual([]);
    const creating = provider.pushes.flat().filter((op) => op.pk === 'm1' && op.clock === 1).at(-1)!;
    const final = server.get('m1')!;
    expect(final.clock).toBe(2);
    expect(final.payload?.order_key).toBe(creating.hlc);
    const row = await db.table('messages').get('m1');
    expect({ hlc: row.hlc, order_key: row.order_key }).toEqual({ hlc: final.hlc, order_key: final.payload?.order_key });
  });

  it('a_remote_stamp_ahead_never_drags_the_clock: an edit of another device\'s row minutes ahead stamps at corrected time', async () => {
    // The server takes stamps up to 5 minutes ahead of its time; the clock receives them with a
    // 60 s drift bound, and editing such a row must not raise it past that bound either.
    const { provider, engine, db } = await setup();
    const ahead = Date.now() + 4 * 60_000;
    const remote = `${ahead}-000000-aaaaaaaaaaaaaaaa`;
    provider.log = [
      {
        server_version: 1,
        table_name: 'messages',
        pk: 'r1',
        operation: 'put',
        payload: { id: 'r1', thread_id: 't1', index: 0, content: 'theirs', order_key: remote, clock: 1, hlc: remote },
        clock: 1,
        hlc: remote,
        op_id: crypto.randomUUID(),
        device_id: 'aaaaaaaaaaaaaaaa',
        scope_change: false,
      },
    ];
    await engine.sync();
    expect((await db.table('messages').get('r1')).hlc).toBe(remote);
    await db.table('messages').update('r1', { content: 'edited' });
    await db.table('messages').put({ id: 'm2', thread_id: 't1', index: 1, content: 'new' });
    const edited = await db.table('messages').get('r1');
    expect(edited).toMatchObject({ clock: 2, order_key: remote });
    expect(parseHlc(edited.hlc).ms - Date.now()).toBeLessThan(5_000);
    const m2 = await db.table('messages').get('m2');
    expect(parseHlc(m2.order_key).ms - Date.now()).toBeLessThan(5_000);
  });

  it('order_key_never_changes_after_creation: a re-stamped edit keeps the order_key of its message', async () => {
    const { provider, engine, db } = await setup();
    await db.table('messages').put({ id: 'm1', thread_id: 't1', index: 0 });
    await engine.sync();
    const created = (await db.table('messages').get('m1')).order_key as string;
    provider.pushes = [];
    provider.onPush = (ops, call) => ({
      results: ops.map((op): OpResult =>
        call === 1
          ? { op_id: op.op_id, status: 'rejected', error: { code: 'clock_skew', message: 'ahead', retryable: true } }
          : applied(op, 2),
      ),
      server_version: 2,
      server_time: Date.now(),
    });
    await db.table('messages').update('m1', { content: 'edited' });
    expect(await engine.sync()).toMatchObject({ error: null });
    const [edit] = provider.pushes[1]!;
    expect(edit!.hlc).not.toBe(provider.pushes[0]![0]!.hlc);
    expect(edit!.payload?.order_key).toBe(created);
    expect((await db.table('messages').get('m1')).order_key).toBe(created);
  });

  it('a clock-skew give-up still pulls: the run fails with clock_skew after applying the changes of others', async () => {
    const { provider, engine, db } = await setup();
    provider.onPush = (ops) => ({
      results: ops.map((op): OpResult => ({ op_id: op.op_id, status: 'rejected', error: { code: 'clock_skew', message: 'ahead', retryable: true } })),
      server_version: 0,
    });
    provider.log = [
      {
        server_version: 1,
        table_name: 'threads',
        pk: 'theirs',
        operation: 'put',
        payload: { id: 'theirs', title: 'from another device' },
        clock: 1,
        hlc: '1732540000000-000001-aaaaaaaaaaaaaaaa',
        op_id: crypto.randomUUID(),
        device_id: 'aaaaaaaaaaaaaaaa',
      },
    ];
    const pullsBefore = provider.pulls.length;
    await db.table('threads').put({ id: 'mine' });
    const run = await engine.sync();
    expect(run).toMatchObject({ error: 'clock_skew', pulled: 1 });
    expect(provider.pulls.length).toBeGreaterThan(pullsBefore);
    expect(await db.table('threads').get('theirs')).toMatchObject({ title: 'from another device' });
    expect(await engine.pendingCount()).toBe(1);
  });

  it('429: waits at least Retry-After, emits sync.retry:action, and the next run succeeds', async () => {
    const { provider, engine, db } = await setup();
    const retries: RetryEvent[] = [];
    engine.on('sync.retry:action', (e) => retries.push(e));
    provider.pushFailures.push({ code: 'rate_limited', message: 'slow down', status: 429, retryAfterMs: 2000 });
    await db.table('threads').put({ id: 't1' });
    const failed = await engine.sync();
    expect(failed.error).toBe('rate_limited');
    expect(retries).toEqual([expect.objectContaining({ phase: 'push', attempt: 1, code: 'rate_limited' })]);
    expect(retries[0]!.delayMs).toBeGreaterThanOrEqual(2000);
    const ok = await engine.sync();
    expect(ok).toMatchObject({ error: null, pushed: 1 });
  });

  it('backoff doubles with jitter, capped, and sync.error:action fires after 8 failed tries', async () => {
    const { provider, engine, db } = await setup({ backoff: { baseMs: 250, maxMs: 60_000 }, random: () => 1 });
    const retries: RetryEvent[] = [];
    const errors: ErrorEvent[] = [];
    engine.on('sync.retry:action', (e) => retries.push(e));
    engine.on('sync.error:action', (e) => errors.push(e));
    await db.table('threads').put({ id: 't1' });
    for (let i = 0; i < 10; i++) {
      provider.pushFailures.push({ code: 'network_error', message: 'offline', status: 0 });
      await engine.sync();
    }
    expect(retries.map((r) => r.delayMs)).toEqual([250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
    expect(errors).toEqual([expect.objectContaining({ code: 'network_error', attempts: 8 })]);
    expect(await engine.pendingCount()).toBe(1);
  });

  it('403 on push and on the pull after it (no longer a member) pauses the loops, keeps the outbox and reports; resume() goes on', async () => {
    const { provider, engine, db } = await setup();
    const errors: ErrorEvent[] = [];
    engine.on('sync.error:action', (e) => errors.push(e));
    provider.pushFailures.push({ code: 'forbidden', message: 'not a member', status: 403 });
    const pull = provider.pull.bind(provider);
    provider.pull = async () => {
      provider.pull = pull;
      throw new SyncProviderError({ code: 'forbidden', message: 'not a member', status: 403 });
    };
    await db.table('threads').put({ id: 't1' });
    await engine.sync();
    expect(engine.isPaused).toBe(true);
    expect(engine.access).toBe('revoked');
    expect(engine.pauseReason).toEqual({ kind: 'refused', phase: 'pull', code: 'forbidden', message: 'not a member' });
    expect(errors).toEqual([expect.objectContaining({ code: 'forbidden', paused: true })]);
    expect((await engine.sync()).error).toBe('paused');
    expect(provider.pushes).toHaveLength(1);
    expect(await engine.pendingCount()).toBe(1);
    engine.resume();
    expect(await engine.sync()).toMatchObject({ error: null, pushed: 1 });
    expect(engine.access).toBe('read_write');
  });

  it('403 on push while the pull after it succeeds (a viewer now): the ops fail with read_only, nothing pauses or retries', async () => {
    const { provider, engine, db } = await setup();
    provider.pushFailures.push({ code: 'forbidden', message: 'viewers may not push', status: 403 });
    await db.table('threads').put({ id: 't1' });
    expect((await engine.sync()).error).toBeNull();
    expect(engine.access).toBe('read_only');
    expect(engine.isPaused).toBe(false);
    expect((await engine.failedOps()).map((op) => [op.pk, op.error?.code])).toEqual([['t1', 'read_only']]);
    expect(provider.pulls.length).toBeGreaterThan(0);
    expect((await engine.sync()).pushed).toBe(0);
    expect(provider.pushes).toHaveLength(1);
  });

  it('payloads above the provider limit fail locally without blocking the rest', async () => {
    const { provider, engine, db } = await setup();
    provider.maxPayloadBytes = 200;
    await db.table('threads').bulkPut([{ id: 'big', text: 'x'.repeat(500) }, { id: 'small' }]);
    await engine.sync();
    expect(provider.pushes.flat().map((o) => o.pk)).toEqual(['small']);
    expect(await engine.failedOps()).toEqual([expect.objectContaining({ pk: 'big', error: expect.objectContaining({ code: 'payload_too_large' }) })]);
  });

  it('a low RateLimit-Remaining slows the loop down between batches', async () => {
    const { provider, engine, db } = await setup({ rateLimitLowWater: 5, rateLimitDelayMs: 150, pushBatchSize: 1 });
    provider.lastRateLimitRemaining = 1;
    await db.table('threads').bulkPut([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    const started = Date.now();
    await engine.sync();
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(provider.pushes).toHaveLength(3);
  });
});

describe('telemetry', () => {
  it('every run writes a _or3sync_runs row and emits sync.stats:action', async () => {
    const { provider, engine, db } = await setup();
    const stats: SyncStats[] = [];
    engine.on('sync.stats:action', (s) => stats.push(s));
    await db.table('threads').bulkPut([{ id: 'a' }, { id: 'b' }]);
    await engine.sync();
    provider.pushFailures.push({ code: 'store_unavailable', message: 'busy', status: 503 });
    await db.table('threads').put({ id: 'c' });
    await engine.sync();
    const runs = await db.table<SyncRunRow>('_or3sync_runs').orderBy('id').toArray();
    expect(runs).toHaveLength(3); // the setup run and these two
    expect(runs[1]).toMatchObject({ pushed: 2, pulled: 0, conflicts: 0, error: null });
    expect(runs[2]).toMatchObject({ pushed: 0, error: 'store_unavailable' });
    for (const run of runs) expect(run.finished_at).toBeGreaterThanOrEqual(run.started_at);
    expect(stats).toHaveLength(2);
    // The push's own changes (versions 1 and 2, right after the cursor) moved the cursor past them.
    expect(stats[0]).toMatchObject({ workspaceId: 'ws-push', pending: 0, cursor: 2, errors: 0, paused: false });
    expect(stats[0]!.lastPushAt).toEqual(expect.any(Number));
    expect(stats[1]).toMatchObject({ pending: 1, errors: 1 });
  });
});
