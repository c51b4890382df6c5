/** Capture, outbox and local apply rules, on fake-indexeddb with a scripted provider. */
import { afterEach, describe, expect, it } from 'vitest';
import type { SyncEngine } from '../src/engine.js';
import { parseHlc, type Change } from '@or3/sync-protocol';
import type { PendingOpRow } from '../src/outbox/index.js';
import type { TombstoneRow } from '../src/schema.js';
import { makeDevice } from './support/devices.js';
import { ScriptedProvider } from './support/scripted-provider.js';

const opened: SyncEngine[] = [];
afterEach(async () => {
  for (const engine of opened.splice(0)) await engine.close();
});

async function setup(overrides: Parameters<ReturnType<typeof makeDevice>['open']>[0] = {}) {
  const provider = new ScriptedProvider();
  const device = makeDevice('ws-capture', provider);
  const engine = await device.open(overrides);
  opened.push(engine);
  return { provider, device, engine, db: engine.db };
}

async function outbox(engine: SyncEngine): Promise<PendingOpRow[]> {
  return engine.db.table<PendingOpRow>('_or3sync_outbox').orderBy('seq').toArray();
}

function change(partial: Partial<Change> & Pick<Change, 'server_version' | 'table_name' | 'pk'>): Change {
  return {
    operation: 'put',
    payload: { id: partial.pk, title: 'remote' },
    clock: 1,
    hlc: '1732540000000-000000-aaaaaaaaaaaaaaaa',
    op_id: crypto.randomUUID(),
    device_id: 'aaaaaaaaaaaaaaaa',
    scope_change: false,
    ...partial,
  };
}

describe('capture', () => {
  it('opens one database per workspace, named or3-db-<workspace>', async () => {
    const { db } = await setup();
    expect(db.name).toBe('or3-db-ws-capture');
    expect(db.tables.map((t) => t.name).sort()).toEqual(
      ['file_meta', 'kv', 'messages', '_or3sync_outbox', '_or3sync_runs', '_or3sync_staging', '_or3sync_state', '_or3sync_tombstones', 'threads'].sort(),
    );
  });

  it('switching workspaces closes one database and opens another without touching its rows', async () => {
    const provider = new ScriptedProvider();
    const deviceA = makeDevice('ws-a', provider);
    const a = await deviceA.open();
    await a.db.table('threads').put({ id: 'only-in-a' });
    await a.close();
    const b = await deviceA.open({ workspaceId: 'ws-b' });
    expect(b.db.name).toBe('or3-db-ws-b');
    expect(await b.db.table('threads').count()).toBe(0);
    await b.db.table('threads').put({ id: 'only-in-b' });
    await b.close();
    const again = await deviceA.open();
    opened.push(again);
    expect((await again.db.table('threads').toArray()).map((r) => r.id)).toEqual(['only-in-a']);
    expect(await again.pendingCount()).toBe(1);
  });

  it('a put appends one stamped op in the same transaction', async () => {
    const { engine, db } = await setup({ now: () => 1_732_540_000_500 });
    await db.table('threads').put({ id: 't1', title: 'hello' });
    const row = await db.table('threads').get('t1');
    const [op] = await outbox(engine);
    expect(row).toMatchObject({ id: 't1', title: 'hello', clock: 1, deleted: false, deleted_at: null, updated_at: 1_732_540_000 });
    expect(op).toMatchObject({ table_name: 'threads', pk: 't1', operation: 'put', clock: 1, status: 'pending', sent: 0 });
    expect(op!.payload).toEqual(row);
    expect(op!.hlc).toBe(row.hlc);
    expect(parseHlc(op!.hlc)).toEqual({ ms: 1_732_540_000_500, counter: 0, deviceId: engine.deviceId });
    expect(op!.device_id).toBe(engine.deviceId);
  });

  it('each local write raises the clock and the hlc, and ops stay in write order', async () => {
    const { engine, db } = await setup();
    await db.table('threads').put({ id: 't1', title: 'a' });
    await db.table('threads').update('t1', { title: 'b' });
    await db.table('threads').where('id').equals('t1').modify({ title: 'c' });
    await db.table('threads').bulkPut([{ id: 't2', title: 'x' }, { id: 't1', title: 'd' }]);
    await db.table('threads').bulkAdd([{ id: 't3', title: 'y' }]);
    const ops = await outbox(engine);
    expect(ops.map((o) => [o.pk, o.clock, o.payload?.title])).toEqual([
      ['t1', 1, 'a'],
      ['t1', 2, 'b'],
      ['t1', 3, 'c'],
      ['t2', 1, 'x'],
      ['t1', 4, 'd'],
      ['t3', 1, 'y'],
    ]);
    const hlcs = ops.map((o) => o.hlc);
    expect([...hlcs].sort()).toEqual(hlcs);
    expect(new Set(hlcs).size).toBe(hlcs.length);
  });

  it('a failed add captures nothing for the failed row', async () => {
    const { engine, db } = await setup();
    await db.table('threads').add({ id: 't1', title: 'a' });
    await expect(db.table('threads').add({ id: 't1', title: 'again' })).rejects.toThrow();
    await db.table('threads').bulkAdd([{ id: 't1', title: 'dup' }, { id: 't2', title: 'new' }]).catch(() => {});
    const ops = await outbox(engine);
    expect(ops.map((o) => [o.pk, o.payload?.title])).toEqual([
      ['t1', 'a'],
      ['t2', 'new'],
    ]);
  });

  it('an aborted transaction leaves neither row nor op', async () => {
    const { engine, db } = await setup();
    await expect(
      db.transaction('rw', db.table('threads'), async () => {
        await db.table('threads').put({ id: 't1', title: 'a' });
        throw new Error('app changed its mind');
      }),
    ).rejects.toThrow('app changed its mind');
    expect(await db.table('threads').get('t1')).toBeUndefined();
    expect(await outbox(engine)).toEqual([]);
  });

  it('writes to several tables in one app transaction are all captured', async () => {
    const { engine, db } = await setup();
    await db.transaction('rw', db.table('threads'), db.table('messages'), async () => {
      await db.table('threads').put({ id: 't1', title: 'a' });
      await db.table('messages').put({ id: 'm1', thread_id: 't1', index: 0, content: 'hi' });
    });
    expect((await outbox(engine)).map((o) => o.table_name)).toEqual(['threads', 'messages']);
  });

  it('a new message gets order_key = its hlc, and keeps it on later writes', async () => {
    const { db } = await setup();
    await db.table('messages').put({ id: 'm1', thread_id: 't1', index: 0, content: 'a' });
    const first = await db.table('messages').get('m1');
    expect(first.order_key).toBe(first.hlc);
    await db.table('messages').put({ id: 'm1', thread_id: 't1', index: 0, content: 'b' });
    const second = await db.table('messages').get('m1');
    expect(second.order_key).toBe(first.order_key);
    expect(second.hlc).not.toBe(first.hlc);
    await db.table('messages').put({ id: 'm2', thread_id: 't1', index: 1, content: 'c', order_key: 'given' });
    expect((await db.table('messages').get('m2')).order_key).toBe('given');
  });

  it('soft delete: table.delete keeps a tombstone row and records the stamp', async () => {
    const { engine, db } = await setup();
    await db.table('threads').put({ id: 't1', title: 'a' });
    await db.table('threads').delete('t1');
    const row = await db.table('threads').get('t1');
    expect(row).toMatchObject({ id: 't1', title: 'a', deleted: true, clock: 2 });
    expect(typeof row.deleted_at).toBe('number');
    const ops = await outbox(engine);
    expect(ops[1]).toMatchObject({ operation: 'delete', clock: 2, pk: 't1' });
    const tomb = await db.table<TombstoneRow>('_or3sync_tombstones').get(['threads', 't1']);
    expect(tomb).toMatchObject({ clock: 2, hlc: ops[1]!.hlc, op_id: ops[1]!.op_id });
  });

  it('soft delete: a put with deleted: true is a delete op', async () => {
    const { engine, db } = await setup();
    await db.table('threads').put({ id: 't1', title: 'a' });
    await db.table('threads').put({ id: 't1', title: 'a', deleted: true });
    expect((await outbox(engine)).map((o) => o.operation)).toEqual(['put', 'delete']);
    expect(await db.table('_or3sync_tombstones').count()).toBe(1);
  });

  it('hard delete: the row goes, the stamp stays, and a new write starts above it', async () => {
    const { engine, db } = await setup();
    await db.table('kv').put({ id: 'k1', value: 1 });
    await db.table('kv').delete('k1');
    expect(await db.table('kv').get('k1')).toBeUndefined();
    expect(await db.table('_or3sync_tombstones').get(['kv', 'k1'])).toMatchObject({ clock: 2 });
    await db.table('kv').put({ id: 'k1', value: 2 });
    expect(await db.table('kv').get('k1')).toMatchObject({ clock: 3, value: 2 });
    expect((await outbox(engine)).map((o) => [o.operation, o.clock])).toEqual([
      ['put', 1],
      ['delete', 2],
      ['put', 3],
    ]);
  });

  it('clear() on a synced table captures a delete per row', async () => {
    const { engine, db } = await setup();
    await db.table('kv').bulkPut([{ id: 'a' }, { id: 'b' }]);
    await db.table('kv').clear();
    expect(await db.table('kv').count()).toBe(0);
    expect((await outbox(engine)).filter((o) => o.operation === 'delete').map((o) => o.pk)).toEqual(['a', 'b']);
  });

  it('a row without its primary key cannot be captured', async () => {
    const { db } = await setup();
    await expect(db.table('file_meta').put({ id: 'x' })).rejects.toThrow(/no hash/);
  });

  it('the HLC state survives close and reopen', async () => {
    const provider = new ScriptedProvider();
    const device = makeDevice('ws-hlc', provider, { now: () => 1_000_000_000_000 });
    const first = await device.open();
    await first.db.table('threads').put({ id: 't1' });
    await first.db.table('threads').put({ id: 't2' });
    const before = (await outbox(first)).at(-1)!.hlc;
    await first.close();
    const second = await device.open();
    opened.push(second);
    expect(second.deviceId).toBe(first.deviceId);
    await second.db.table('threads').put({ id: 't3' });
    const after = (await outbox(second)).at(-1)!.hlc;
    expect(after > before).toBe(true);
    expect(parseHlc(after).counter).toBe(2);
  });
});

describe('capture cost cuts keep the rules', () => {
  it('a write starts above a tombstone another tab recorded after this tab last looked', async () => {
    const provider = new ScriptedProvider();
    const device = makeDevice('ws-tomb-tabs', provider);
    const tab1 = await device.open();
    const tab2 = await device.open();
    opened.push(tab1, tab2);
    // tab1 learns that kv has no tombstones yet.
    await tab1.db.table('kv').put({ id: 'other' });
    await tab2.db.table('kv').put({ id: 'k', value: 1 });
    await tab2.db.table('kv').delete('k');
    await tab1.db.table('kv').put({ id: 'k', value: 2 });
    expect(await tab1.db.table('kv').get('k')).toMatchObject({ clock: 3, value: 2 });
  });

  it('a database whose clock state predates the tombstone list finds it at open', async () => {
    const provider = new ScriptedProvider();
    const device = makeDevice('ws-tomb-migrate', provider);
    const first = await device.open();
    await first.db.table('kv').put({ id: 'k' });
    await first.db.table('kv').delete('k');
    await first.db.table('_or3sync_state').put({ key: 'hlc', value: { ms: 5, counter: 1 } });
    await first.close();
    const second = await device.open();
    opened.push(second);
    expect((await second.db.table('_or3sync_state').get('hlc')).value).toEqual({ ms: 5, counter: 1, tombstone_tables: ['kv'] });
    await second.db.table('kv').put({ id: 'k' });
    expect(await second.db.table('kv').get('k')).toMatchObject({ clock: 3 });
  });

  it('a bulk write reads existing rows and tombstones, whether few or many are in its key range', async () => {
    const { engine, db } = await setup();
    // Rows r000..r099 exist (clock 1); r050..r059 are hard-deleted (tombstone clock 2).
    await db.table('kv').bulkPut(Array.from({ length: 100 }, (_, i) => ({ id: `r${String(i).padStart(3, '0')}` })));
    await db.table('kv').bulkDelete(Array.from({ length: 10 }, (_, i) => `r${50 + i}`.replace('r', 'r0')));
    // Dense: every key of the range exists or has a stamp.
    await db.table('kv').bulkPut(Array.from({ length: 100 }, (_, i) => ({ id: `r${String(i).padStart(3, '0')}`, v: 'dense' })));
    // Sparse: new keys around a few existing ones.
    await db.table('kv').bulkPut(
      Array.from({ length: 40 }, (_, i) => ({ id: i % 10 === 0 ? `r0${50 + i / 10}` : `r${String(i).padStart(3, '0')}x`, v: 'sparse' })),
    );
    // Spread wide: the key range holds far more rows than the write has keys.
    await db.table('kv').bulkPut([
      ...Array.from({ length: 15 }, (_, i) => ({ id: `r${String(i * 6).padStart(3, '0')}y`, v: 'wide' })),
      { id: 'r051', v: 'wide' },
    ]);
    const rows = new Map((await db.table('kv').toArray()).map((r: { id: string; clock: number }) => [r.id, r.clock]));
    expect(rows.get('r000')).toBe(2);
    expect(rows.get('r051')).toBe(5);
    expect(rows.get('r084y')).toBe(1);
    expect(rows.get('r049')).toBe(2);
    expect(rows.get('r050')).toBe(4); // put 1, delete 2, dense put 3, sparse put 4
    expect(rows.get('r053')).toBe(4);
    expect(rows.get('r055')).toBe(3);
    expect(rows.get('r001x')).toBe(1);
    expect(await engine.pendingCount()).toBe(100 + 10 + 100 + 40 + 16);
  });

  it('writes issued in parallel inside one transaction never share a stamp', async () => {
    const { engine, db } = await setup({ now: () => 1_732_540_000_000 });
    await db.transaction('rw', db.table('threads'), db.table('messages'), async () => {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => db.table(i % 2 ? 'threads' : 'messages').put({ id: `x${i}`, thread_id: 't' })),
      );
    });
    const hlcs = (await outbox(engine)).map((o) => o.hlc);
    expect(hlcs).toHaveLength(10);
    expect(new Set(hlcs).size).toBe(10);
  });

  it('a stale copy written back still gets the next clock, and its op carries the row as stored', async () => {
    const { engine, db } = await setup();
    await db.table('threads').put({ id: 't1', title: 'a' });
    const stale = await db.table('threads').get('t1');
    await db.table('threads').update('t1', { title: 'b' });
    await db.table('threads').update('t1', { title: 'c' });
    await db.table('threads').put({ ...stale, title: 'from a stale copy' });
    const row = await db.table('threads').get('t1');
    const last = (await outbox(engine)).at(-1)!;
    expect(row).toMatchObject({ title: 'from a stale copy', clock: 4 });
    expect(last.payload).toEqual(row);
    expect([last.clock, last.hlc]).toEqual([4, row.hlc]);
  });

  it('a write after a remote change to the clock state stamps above the remote hlc', async () => {
    const { provider, engine, db } = await setup({ now: () => 1_732_540_000_000 });
    await db.table('threads').put({ id: 'local-1' });
    provider.log = [change({ server_version: 1, table_name: 'threads', pk: 'r', hlc: '1732540000000-000500-aaaaaaaaaaaaaaaa' })];
    provider.snapshotVersion = 0;
    await engine.sync();
    await db.table('threads').put({ id: 'local-2' });
    const ops = await outbox(engine);
    expect(ops.at(-1)!.pk).toBe('local-2');
    expect(ops.at(-1)!.hlc > '1732540000000-000500-aaaaaaaaaaaaaaaa').toBe(true);
    expect((await db.table('threads').get('local-2')).hlc).toBe(ops.at(-1)!.hlc);
  });

  it('tabs taking turns with stale guesses of the clock state still never share a stamp', async () => {
    const provider = new ScriptedProvider();
    const device = makeDevice('ws-tabs-turns', provider, { now: () => 1_732_540_000_000 });
    const tab1 = await device.open();
    const tab2 = await device.open();
    opened.push(tab1, tab2);
    await tab1.db.table('threads').put({ id: 'a' });
    for (const id of ['b', 'c', 'd']) await tab2.db.table('threads').put({ id });
    await tab1.db.table('threads').put({ id: 'e' }); // tab1 last saw the state after 'a'
    await tab2.db.table('threads').put({ id: 'f' }); // tab2 last saw it after 'd'
    const ops = await outbox(tab1);
    expect(ops.map((o) => o.pk)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(ops.map((o) => parseHlc(o.hlc).counter)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const op of ops) expect((await tab1.db.table('threads').get(op.pk)).hlc).toBe(op.hlc);
  });

  it('a large bulkAdd with a duplicate key captures every row but the failed one', async () => {
    const { engine, db } = await setup();
    await db.table('threads').add({ id: 't050', title: 'first' });
    const rows = Array.from({ length: 100 }, (_, i) => ({ id: `t${String(i).padStart(3, '0')}`, title: 'bulk' }));
    await expect(db.table('threads').bulkAdd(rows)).rejects.toThrow();
    const ops = await outbox(engine);
    expect(ops).toHaveLength(100);
    expect(ops.filter((o) => o.pk === 't050').map((o) => o.payload?.title)).toEqual(['first']);
    expect(await db.table('threads').get('t050')).toMatchObject({ title: 'first', clock: 1 });
  });
});

describe('remote apply', () => {
  it('remote applies are not captured', async () => {
    const { provider, engine, db } = await setup();
    await engine.sync();
    provider.log = [change({ server_version: 1, table_name: 'threads', pk: 't1' })];
    const run = await engine.sync();
    expect(run.error).toBeNull();
    expect(await db.table('threads').get('t1')).toMatchObject({ title: 'remote', clock: 1 });
    expect(await outbox(engine)).toEqual([]);
    expect(provider.pushes).toEqual([]);
  });

  it('a stale remote put does not resurrect a tombstone (soft and hard)', async () => {
    const { provider, engine, db } = await setup();
    await engine.sync();
    await db.table('threads').put({ id: 't1', title: 'mine' });
    await db.table('threads').delete('t1');
    await db.table('kv').put({ id: 'k1' });
    await db.table('kv').delete('k1');
    await engine.sync(); // pushed: the outbox is empty, only the tombstone stamps remain
    expect(await outbox(engine)).toEqual([]);
    provider.log = [
      change({ server_version: 10, table_name: 'threads', pk: 't1', clock: 1, hlc: '9999999999999-000000-aaaaaaaaaaaaaaaa' }),
      change({ server_version: 11, table_name: 'kv', pk: 'k1', clock: 1, hlc: '9999999999999-000000-aaaaaaaaaaaaaaaa' }),
    ];
    await engine.sync();
    expect(await db.table('threads').get('t1')).toMatchObject({ deleted: true, clock: 2 });
    expect(await db.table('kv').get('k1')).toBeUndefined();
  });

  it('a remote delete is applied as a tombstone, never a live row', async () => {
    const { provider, engine, db } = await setup();
    await engine.sync();
    provider.log = [
      change({ server_version: 1, table_name: 'threads', pk: 't1' }),
      change({ server_version: 2, table_name: 'threads', pk: 't1', operation: 'delete', clock: 2, payload: { id: 't1', title: 'remote', deleted: false } }),
      change({ server_version: 3, table_name: 'kv', pk: 'k1', payload: { id: 'k1' } }),
      change({ server_version: 4, table_name: 'kv', pk: 'k1', operation: 'delete', clock: 2, payload: null }),
    ];
    await engine.sync();
    expect(await db.table('threads').get('t1')).toMatchObject({ deleted: true, clock: 2 });
    expect(await db.table('kv').get('k1')).toBeUndefined();
    expect(await db.table('_or3sync_tombstones').count()).toBe(2);
  });

  it('a remote change that loses to an unpushed local write is refused with a conflict event', async () => {
    const { provider, engine, db } = await setup();
    await engine.sync();
    provider.onPush = () => {
      throw new Error('offline');
    };
    await db.table('threads').put({ id: 't1', title: 'a' });
    await db.table('threads').put({ id: 't1', title: 'b' });
    const conflicts: unknown[] = [];
    engine.on('sync.conflict:action:detected', (c) => conflicts.push(c));
    provider.log = [change({ server_version: 1, table_name: 'threads', pk: 't1', clock: 1 })];
    await engine.sync();
    expect(await db.table('threads').get('t1')).toMatchObject({ title: 'b', clock: 2 });
    expect(conflicts).toEqual([expect.objectContaining({ tableName: 'threads', pk: 't1', winner: 'local' })]);
  });

  it('a remote change that beats an unpushed local write wins and reports the conflict', async () => {
    const { provider, engine, db } = await setup();
    await engine.sync();
    provider.onPush = () => {
      throw new Error('offline');
    };
    await db.table('threads').put({ id: 't1', title: 'mine' });
    const conflicts: { winner: string }[] = [];
    engine.on('sync.conflict:action:detected', (c) => conflicts.push(c));
    provider.log = [change({ server_version: 1, table_name: 'threads', pk: 't1', clock: 5 })];
    await engine.sync();
    expect(await db.table('threads').get('t1')).toMatchObject({ title: 'remote', clock: 5 });
    expect(conflicts.map((c) => c.winner)).toEqual(['remote']);
    // The next local write goes above the remote clock.
    await db.table('threads').update('t1', { title: 'again' });
    expect(await db.table('threads').get('t1')).toMatchObject({ clock: 6 });
  });

  it('our own earlier write coming back is not a conflict with a later unpushed one', async () => {
    const { provider, engine, db } = await setup();
    await engine.sync();
    await db.table('threads').put({ id: 't1', title: 'v1' });
    await engine.sync();
    const [pushed] = provider.pushes.at(-1)!;
    provider.onPush = () => {
      throw new Error('offline');
    };
    await db.table('threads').put({ id: 't1', title: 'v2' });
    const conflicts: unknown[] = [];
    engine.on('sync.conflict:action:detected', (c) => conflicts.push(c));
    provider.log = [change({ ...pushed!, server_version: 1, scope_change: false })];
    await engine.sync();
    expect(conflicts).toEqual([]);
    expect(await db.table('threads').get('t1')).toMatchObject({ title: 'v2', clock: 2 });
  });

  it('the cursor is stored with the rows', async () => {
    const { provider, engine, db } = await setup();
    provider.log = [change({ server_version: 7, table_name: 'threads', pk: 't1' })];
    await engine.sync();
    expect((await db.table('_or3sync_state').get('cursor:*')).value).toBe(7);
  });
});

describe('outbox soft limit', () => {
  it('coalesces never-sent ops per record above the limit, keeps the latest state and fires the event', async () => {
    const { provider, engine, db } = await setup({ outboxSoftLimit: 5 });
    await engine.sync();
    const full: unknown[] = [];
    engine.on('sync.queue:action:full', (e) => full.push(e));
    for (let i = 0; i < 5; i++) await db.table('threads').put({ id: `t${i}`, n: 0 });
    expect(full).toEqual([]);
    for (let n = 1; n <= 20; n++) await db.table('threads').put({ id: 't0', n });
    await db.table('threads').delete('t1');
    const ops = await outbox(engine);
    expect(ops.length).toBeLessThanOrEqual(6);
    expect(full).toEqual([expect.objectContaining({ limit: 5 })]);
    const t0 = ops.filter((o) => o.pk === 't0');
    expect(t0.at(-1)!.payload).toMatchObject({ n: 20 });
    expect(t0.at(-1)!.clock).toBe(21);
    // put then delete became a delete at the put's position
    const t1 = ops.filter((o) => o.pk === 't1');
    expect(t1.map((o) => o.operation)).toEqual(['delete']);
    expect(ops.map((o) => o.pk).slice(0, 5)).toEqual(['t0', 't1', 't2', 't3', 't4']);
    let capacity = false;
    const waiting = engine.waitForCapacity().then(() => (capacity = true));
    await Promise.resolve();
    expect(capacity).toBe(false);
    await engine.sync();
    await waiting;
    expect(capacity).toBe(true);
    const pushed = provider.pushes.flat();
    expect(pushed.find((o) => o.pk === 't0' && o.clock === 21)?.payload).toMatchObject({ n: 20 });
    expect(pushed.find((o) => o.pk === 't1')?.operation).toBe('delete');
  });

  it('an op that was ever sent is never merged', async () => {
    const { provider, engine, db } = await setup({ outboxSoftLimit: 1 });
    await engine.sync();
    provider.pushFailures.push({ code: 'store_unavailable', message: 'down', status: 503 });
    await db.table('threads').put({ id: 't1', n: 1 });
    await engine.sync(); // sent once, failed: stays in the outbox marked sent
    await db.table('threads').put({ id: 't1', n: 2 });
    await db.table('threads').put({ id: 't1', n: 3 });
    const ops = await outbox(engine);
    expect(ops.map((o) => [o.payload?.n, o.sent])).toEqual([
      [1, 1],
      [3, 0],
    ]);
  });
});
