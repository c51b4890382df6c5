/**
 * End-to-end: engines on fake-indexeddb against the real or3-sync server
 * binary (dev auth, SQLite, ephemeral port).
 */
import { liveQuery } from 'dexie';
import { describe, expect, it } from 'vitest';
import type { OpenWorkspaceOptions } from '../src/attach.js';
import type { SyncEngine } from '../src/engine.js';
import type { ErrorEvent, SyncStats } from '../src/events.js';
import { GatewayProvider } from '../src/gateway/gateway-provider.js';
import type { PendingOpRow } from '../src/outbox/index.js';
import type { SyncRunRow } from '../src/schema.js';
import type { ChangesPage, PushResponse } from '@or3/sync-protocol';
import { APP_SCHEMA, makeDevice, SYNCED_TABLES, type TestDevice } from './support/devices.js';
import { gatewayPerFile } from './support/gateway-per-file.js';

const gateway = gatewayPerFile();
const { opened } = gateway;

/** A device of `userId` whose network can be switched off. */
interface Client {
  device: TestDevice;
  provider: GatewayProvider;
  online: boolean;
  /** Set to make the next push reach the server but lose its answer. */
  loseNextPushAnswer: boolean;
  open(overrides?: Partial<OpenWorkspaceOptions>): Promise<SyncEngine>;
}

async function client(workspaceId: string, userId: string, defaults: Partial<OpenWorkspaceOptions> = {}): Promise<Client> {
  const token = await gateway.server().token(userId);
  const state: Client = {
    online: true,
    loseNextPushAnswer: false,
  } as Client;
  state.provider = new GatewayProvider({
    baseUrl: gateway.server().baseUrl,
    getToken: () => token,
    pollIntervalMs: 50,
    fetch: async (input, init) => {
      if (!state.online) throw new TypeError('fetch failed: offline');
      const response = await fetch(input, init);
      if (state.loseNextPushAnswer && String(input).endsWith('/push')) {
        state.loseNextPushAnswer = false;
        await response.text();
        throw new TypeError('fetch failed: connection reset');
      }
      return response;
    },
  });
  state.device = makeDevice(workspaceId, state.provider, defaults);
  state.open = async (overrides) => {
    const engine = await state.device.open(overrides);
    opened.push(engine);
    return engine;
  };
  return state;
}

async function sharedWorkspace(): Promise<{ workspaceId: string; ownerToken: string }> {
  const ownerToken = await gateway.server().token('alice');
  const workspaceId = await gateway.server().createWorkspace(ownerToken);
  await gateway.server().addMember(ownerToken, workspaceId, 'bob', 'editor');
  return { workspaceId, ownerToken };
}

/** Every synced table's rows, sorted, for comparing devices. */
async function contents(engine: SyncEngine): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const name of Object.keys(SYNCED_TABLES)) {
    const table = engine.db.table(name);
    out[name] = await table.toArray();
  }
  return out;
}

async function serverLog(workspaceId: string, token: string): Promise<ChangesPage['changes']> {
  const { status, body } = await gateway.server().api<ChangesPage>(token, 'GET', `/v1/workspaces/${workspaceId}/changes?cursor=0&limit=1000`, undefined, {
    'x-device-id': '00000000000000000000000000000000',
  });
  expect(status).toBe(200);
  return body.changes;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('two devices', () => {
  it('converge on the same state after concurrent writes, deletes and offline periods', async () => {
    const { workspaceId } = await sharedWorkspace();
    const alice = await client(workspaceId, 'alice');
    const bob = await client(workspaceId, 'bob');
    const a = await alice.open();
    const b = await bob.open();
    await a.sync();
    await b.sync();

    // Shared starting point.
    await a.db.table('threads').bulkPut([{ id: 't1', title: 'one' }, { id: 't2', title: 'two' }, { id: 't3', title: 'three' }]);
    await a.db.table('kv').bulkPut([{ id: 'k1', value: 1 }, { id: 'k2', value: 2 }]);
    await a.sync();
    await b.sync();
    expect(await contents(b)).toEqual(await contents(a));

    // Both go offline and write concurrently.
    alice.online = false;
    bob.online = false;
    await a.db.table('threads').update('t1', { title: 'alice edit' });
    await b.db.table('threads').update('t1', { title: 'bob edit' });
    await b.db.table('threads').update('t1', { title: 'bob edit 2' }); // bob's clock is higher: bob wins
    await a.db.table('threads').delete('t2');
    await b.db.table('threads').update('t2', { title: 'bob edits a deleted thread' });
    await a.db.table('kv').delete('k1');
    await b.db.table('kv').put({ id: 'k1', value: 'bob' });
    await b.db.table('kv').delete('k2');
    await a.db.table('messages').put({ id: 'm1', thread_id: 't3', index: 0, content: 'from alice' });
    await b.db.table('messages').put({ id: 'm2', thread_id: 't3', index: 1, content: 'from bob' });
    expect((await a.sync()).error).toBe('network_error');
    expect((await b.sync()).error).toBe('network_error');

    // Back online, in either order, twice.
    alice.online = true;
    bob.online = true;
    await b.sync();
    await a.sync();
    await b.sync();
    await a.sync();

    const stateA = await contents(a);
    expect(await contents(b)).toEqual(stateA);
    expect(await a.pendingCount()).toBe(0);
    expect(await b.pendingCount()).toBe(0);
    const t1 = (stateA.threads as { id: string; title: string }[]).find((t) => t.id === 't1');
    expect(t1?.title).toBe('bob edit 2');
    expect((stateA.messages as unknown[]).length).toBe(2);
    expect((stateA.kv as { id: string }[]).some((k) => k.id === 'k2')).toBe(false);
  });

  it('converge after many random rounds of offline writes on both sides', async () => {
    const { workspaceId } = await sharedWorkspace();
    const alice = await client(workspaceId, 'alice');
    const bob = await client(workspaceId, 'bob');
    const a = await alice.open();
    const b = await bob.open();
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)]!;
    for (let round = 0; round < 6; round++) {
      for (const [engine, who] of [[a, 'a'], [b, 'b']] as const) {
        for (let i = 0; i < 8; i++) {
          const table = pick(['threads', 'kv']);
          const id = pick(['r1', 'r2', 'r3', 'r4']);
          if (random() < 0.3) await engine.db.table(table).delete(id);
          else await engine.db.table(table).put({ id, value: `${who}-${round}-${i}` });
        }
      }
      // Sometimes only one side syncs (the other stays offline).
      if (random() < 0.7) await a.sync();
      if (random() < 0.7) await b.sync();
    }
    await a.sync();
    await b.sync();
    await a.sync();
    expect(await contents(b)).toEqual(await contents(a));
    expect(await a.pendingCount()).toBe(0);
    expect(await b.pendingCount()).toBe(0);
  });

  it('background loops (start) carry a write from one device to the other', async () => {
    const { workspaceId } = await sharedWorkspace();
    const a = await (await client(workspaceId, 'alice')).open();
    const b = await (await client(workspaceId, 'bob')).open();
    a.start();
    b.start();
    await waitFor(async () => (await b.db.table('_or3sync_state').get('cursor:*')) !== undefined);
    await a.db.table('threads').put({ id: 'live', title: 'hello' });
    await waitFor(async () => (await b.db.table('threads').get('live'))?.title === 'hello');
    // The server fans the write out as soon as it commits, so b may hold it before a has settled
    // the push answer; a's outbox empties once it has.
    await waitFor(async () => (await a.pendingCount()) === 0);
  });
});

describe('outbox', () => {
  it('offline writes survive close and reopen, and flush in FIFO order when the server is back', async () => {
    const { workspaceId, ownerToken } = await sharedWorkspace();
    const alice = await client(workspaceId, 'alice');
    let engine = await alice.open();
    await engine.sync();
    alice.online = false;
    const ids = ['c', 'a', 'd', 'b', 'e'];
    for (const id of ids) await engine.db.table('threads').put({ id, title: id });
    await engine.db.table('threads').delete('a');
    expect((await engine.sync()).error).toBe('network_error');
    await engine.close();

    engine = await alice.open();
    expect(await engine.pendingCount()).toBe(6);
    alice.online = true;
    expect((await engine.sync()).error).toBeNull();
    const log = await serverLog(workspaceId, ownerToken);
    expect(log.map((c) => [c.pk, c.operation])).toEqual([
      ['c', 'put'],
      ['a', 'put'],
      ['d', 'put'],
      ['b', 'put'],
      ['e', 'put'],
      ['a', 'delete'],
    ]);
    expect(log.map((c) => c.server_version)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('an op held for a configuration mismatch never blocks the ones behind it', async () => {
    const { workspaceId, ownerToken } = await sharedWorkspace();
    const alice = await client(workspaceId, 'alice');
    // `notes` is not a table the server syncs: its ops are rejected as unknown_table, and held.
    const engine = await alice.open({
      schema: { ...APP_SCHEMA, notes: 'id' },
      syncedTables: { ...SYNCED_TABLES, notes: {} },
    });
    await engine.sync();
    const errors: ErrorEvent[] = [];
    engine.on('sync.error:action', (e) => errors.push(e));
    await engine.db.table('threads').put({ id: 'before' });
    await engine.db.table('notes').put({ id: 'n1', text: 'held' });
    await engine.db.table('threads').put({ id: 'after' });
    expect((await engine.sync()).error).toBeNull();
    await engine.db.table('threads').put({ id: 'later' });
    await engine.sync();

    expect((await serverLog(workspaceId, ownerToken)).map((c) => c.pk)).toEqual(['before', 'after', 'later']);
    expect(await engine.failedOps()).toEqual([]);
    const held = await engine.heldOps();
    expect(held).toEqual([expect.objectContaining({ table_name: 'notes', pk: 'n1', status: 'held' })]);
    expect(held[0]!.error?.code).toBe('unknown_table');
    expect(errors).toEqual([expect.objectContaining({ code: 'unknown_table', pk: 'n1', held: true })]);
    expect(await engine.db.table('notes').get('n1')).toMatchObject({ text: 'held' });
  });

  it('a duplicate push changes nothing (a lost answer is retried safely)', async () => {
    const { workspaceId, ownerToken } = await sharedWorkspace();
    const alice = await client(workspaceId, 'alice');
    const engine = await alice.open();
    await engine.sync();
    await engine.db.table('threads').bulkPut([{ id: 'x' }, { id: 'y' }]);
    const sent = await engine.db.table<PendingOpRow>('_or3sync_outbox').toArray();
    alice.loseNextPushAnswer = true;
    expect((await engine.sync()).error).toBe('network_error');
    expect(await engine.pendingCount()).toBe(2);
    expect((await engine.sync()).error).toBeNull();
    expect(await engine.pendingCount()).toBe(0);
    const log = await serverLog(workspaceId, ownerToken);
    expect(log.map((c) => c.pk)).toEqual(['x', 'y']);

    // The same batch once more, by hand: every op is a duplicate and the log does not move.
    const ops = sent.map(({ op_id, table_name, operation, pk, payload, clock, hlc, device_id }) => ({
      op_id, table_name, operation, pk, payload, clock, hlc, device_id,
    }));
    const again = await gateway.server().api<PushResponse>(ownerToken, 'POST', `/v1/workspaces/${workspaceId}/push`, { ops });
    expect(again.status).toBe(200);
    expect(again.body.results.map((r) => r.status)).toEqual(['duplicate', 'duplicate']);
    expect(await serverLog(workspaceId, ownerToken)).toEqual(log);
  });

  it('coalescing at the soft limit keeps the latest state, fires the event, and loses nothing', async () => {
    const { workspaceId } = await sharedWorkspace();
    const alice = await client(workspaceId, 'alice');
    const bob = await client(workspaceId, 'bob');
    const a = await alice.open({ outboxSoftLimit: 10 });
    const b = await bob.open();
    await a.sync();
    const full: unknown[] = [];
    a.on('sync.queue:action:full', (e) => full.push(e));
    for (let i = 0; i < 10; i++) await a.db.table('threads').put({ id: `t${i}`, n: 0 });
    for (let n = 1; n <= 5; n++) {
      for (let i = 0; i < 10; i++) await a.db.table('threads').put({ id: `t${i}`, n });
    }
    await a.db.table('threads').delete('t9');
    expect(full.length).toBe(1);
    expect(await a.pendingCount()).toBeLessThanOrEqual(11);
    let capacity = false;
    const waiting = a.waitForCapacity().then(() => (capacity = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(capacity).toBe(false);
    await a.sync();
    await waiting;
    await b.sync();
    const rows = (await b.db.table('threads').orderBy('id').toArray()) as { id: string; n: number; deleted: boolean }[];
    expect(rows.map((r) => [r.id, r.n, r.deleted])).toEqual([
      ...Array.from({ length: 9 }, (_, i) => [`t${i}`, 5, false]),
      ['t9', 5, true],
    ]);
  });
});

describe('apply rules against the server', () => {
  it('remote applies are not captured', async () => {
    const { workspaceId } = await sharedWorkspace();
    const a = await (await client(workspaceId, 'alice')).open();
    const b = await (await client(workspaceId, 'bob')).open();
    await a.sync();
    await b.sync();
    await a.db.table('threads').bulkPut([{ id: 'p' }, { id: 'q' }]);
    await a.db.table('kv').put({ id: 'k' });
    await a.db.table('kv').delete('k');
    await a.sync();
    const run = await b.sync();
    expect(run.pulled).toBe(4);
    expect(await b.db.table('_or3sync_outbox').count()).toBe(0);
    expect((await b.sync()).pushed).toBe(0);
  });

  it('a stale write does not resurrect a tombstone', async () => {
    const { workspaceId } = await sharedWorkspace();
    const alice = await client(workspaceId, 'alice');
    const a = await alice.open();
    const b = await (await client(workspaceId, 'bob')).open();
    await a.sync();
    await b.sync();
    await a.db.table('threads').put({ id: 't', title: 'v1' });
    await a.db.table('kv').put({ id: 'k', value: 1 });
    await a.sync();
    await b.sync();
    // Alice goes offline with the old versions; Bob edits and deletes (clock 3).
    alice.online = false;
    await b.db.table('threads').update('t', { title: 'v2' });
    await b.db.table('threads').delete('t');
    await b.db.table('kv').update('k', { value: 2 });
    await b.db.table('kv').delete('k');
    await b.sync();
    // Alice's offline edit (clock 2) is older than the tombstone.
    await a.db.table('threads').update('t', { title: 'stale' });
    await a.db.table('kv').update('k', { value: 'stale' });
    const conflicts: unknown[] = [];
    a.on('sync.conflict:action:detected', (c) => conflicts.push(c));
    alice.online = true;
    await a.sync();
    expect(await a.db.table('threads').get('t')).toMatchObject({ deleted: true, clock: 3 });
    expect(await a.db.table('kv').get('k')).toBeUndefined();
    expect(conflicts.length).toBeGreaterThanOrEqual(2);
    await b.sync();
    expect(await b.db.table('threads').get('t')).toMatchObject({ deleted: true, clock: 3 });
    expect(await b.db.table('kv').get('k')).toBeUndefined();
    expect(await contents(b)).toEqual(await contents(a));
  });

  it('401 asks getToken again with forceRefresh and goes on', async () => {
    const { workspaceId } = await sharedWorkspace();
    const good = await gateway.server().token('alice');
    const asked: boolean[] = [];
    const provider = new GatewayProvider({
      baseUrl: gateway.server().baseUrl,
      getToken: ({ forceRefresh }) => {
        asked.push(forceRefresh);
        return forceRefresh ? good : 'expired-token';
      },
    });
    const engine = await makeDevice(workspaceId, provider).open();
    opened.push(engine);
    await engine.db.table('threads').put({ id: 't' });
    expect((await engine.sync()).error).toBeNull();
    expect(asked).toContain(true);
    expect(await engine.pendingCount()).toBe(0);
  });

  it('403 (not a member) pauses the loops and keeps the outbox', async () => {
    const ownerToken = await gateway.server().token('alice');
    const workspaceId = await gateway.server().createWorkspace(ownerToken);
    const mallory = await client(workspaceId, 'mallory');
    const engine = await mallory.open();
    const errors: ErrorEvent[] = [];
    engine.on('sync.error:action', (e) => errors.push(e));
    await engine.db.table('threads').put({ id: 't' });
    const run = await engine.sync();
    expect(run.error).toBe(errors[0]?.code);
    expect(engine.isPaused).toBe(true);
    expect(errors[0]).toMatchObject({ paused: true });
    expect(await engine.pendingCount()).toBe(1);
  });
});

describe('rescan', () => {
  it('keeps pending local writes visible throughout: a liveQuery never sees an empty or half state', async () => {
    const { workspaceId } = await sharedWorkspace();
    const alice = await client(workspaceId, 'alice');
    const a = await alice.open();
    const b = await (await client(workspaceId, 'bob')).open();
    await a.sync();
    await b.sync();
    await a.db.table('threads').bulkPut(Array.from({ length: 60 }, (_, i) => ({ id: `t${String(i).padStart(2, '0')}`, title: 'server' })));
    await a.sync();
    await b.sync();
    // Bob changes things Alice has not pulled yet; Alice has unpushed writes.
    await b.db.table('threads').update('t01', { title: 'bob' });
    await b.db.table('threads').put({ id: 'bob-new', title: 'bob' });
    await b.sync();
    await a.db.table('threads').update('t05', { title: 'alice pending' });
    await a.db.table('threads').put({ id: 'alice-new', title: 'alice pending' });

    const samples: { id: string; title: string }[][] = [];
    const subscription = liveQuery(() => a.db.table('threads').toArray()).subscribe({
      next: (rows) => samples.push(rows as { id: string; title: string }[]),
    });
    let polling = true;
    const polled: { id: string; title: string }[][] = [];
    const poller = (async () => {
      while (polling) {
        polled.push((await a.db.table('threads').toArray()) as { id: string; title: string }[]);
        await new Promise((r) => setTimeout(r, 0));
      }
    })();
    await waitFor(async () => samples.length > 0);

    // Offline for pushes so the pending writes stay pending through the swap.
    const realPush = alice.provider.push.bind(alice.provider);
    alice.provider.push = async () => {
      throw new Error('push held back for the test');
    };
    const rescans: string[] = [];
    a.on('sync.rescan:action', (e) => rescans.push(e.phase));
    await a.rescan();
    await new Promise((r) => setTimeout(r, 50));
    polling = false;
    await poller;
    subscription.unsubscribe();
    alice.provider.push = realPush;

    expect(rescans).toEqual(['started', 'finished']);
    const all = [...samples, ...polled];
    expect(all.length).toBeGreaterThan(2);
    for (const rows of all) {
      const byId = new Map(rows.map((r) => [r.id, r]));
      expect(rows.length).toBeGreaterThanOrEqual(61);
      expect(byId.get('t05')?.title).toBe('alice pending');
      expect(byId.get('alice-new')?.title).toBe('alice pending');
    }
    const final = new Map((await a.db.table('threads').toArray()).map((r: { id: string; title: string }) => [r.id, r.title]));
    expect(final.get('t01')).toBe('bob');
    expect(final.get('bob-new')).toBe('bob');
    expect(final.get('t05')).toBe('alice pending');
    expect(final.size).toBe(62);
    // The live query saw the old state, then the new one.
    expect(samples[0]!.some((r) => r.id === 'bob-new')).toBe(false);
    expect(samples.at(-1)!.some((r) => r.id === 'bob-new')).toBe(true);
    // The swap was seen as one step: old state, then the new one (no sample with bob's row but without bob's edit).
    for (const rows of all) {
      const byId = new Map(rows.map((r) => [r.id, r.title]));
      if (byId.has('bob-new')) expect(byId.get('t01')).toBe('bob');
    }
    expect(await a.pendingCount()).toBe(2);
    await a.sync();
    await b.sync();
    expect(await contents(b)).toEqual(await contents(a));
  });
});

describe('telemetry against the server', () => {
  it('each run writes one _or3sync_runs row and emits one sync.stats:action', async () => {
    const { workspaceId } = await sharedWorkspace();
    const alice = await client(workspaceId, 'alice');
    const engine = await alice.open();
    const stats: SyncStats[] = [];
    engine.on('sync.stats:action', (s) => stats.push(s));
    await engine.sync();
    await engine.db.table('threads').bulkPut([{ id: 'a' }, { id: 'b' }]);
    await engine.sync();
    alice.online = false;
    await engine.db.table('threads').put({ id: 'c' });
    await engine.sync();
    const runs = await engine.db.table<SyncRunRow>('_or3sync_runs').orderBy('id').toArray();
    expect(runs.map((r) => [r.pushed, r.error])).toEqual([
      [0, null],
      [2, null],
      [0, 'network_error'],
    ]);
    expect(stats.map((s) => [s.pending, s.cursor, s.errors])).toEqual([
      [0, 0, 0],
      [0, 2, 0],
      [1, 2, 1],
    ]);
  });
});
