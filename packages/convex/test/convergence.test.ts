/**
 * Two client engines (the real `@or3/sync-client` engine over fake-indexeddb,
 * one database per device) sync through `ConvexSyncProvider` against the
 * Convex functions in convex-test, and converge to the same state as the
 * server, whether driven run by run or by the reactive subscription.
 */
import { openWorkspace, type SyncEngine } from '@or3/sync-client';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterEach, describe, expect, test } from 'vitest';
import { ConvexSyncProvider } from '../src/index.js';
import { workspaceWith } from './setup.js';
import { TestDeployment } from './support/convex-test-transport.js';

const SCHEMA = {
  threads: 'id, project_id, updated_at',
  messages: 'id, thread_id, [thread_id+index]',
  kv: 'id',
};
const SYNCED_TABLES = { threads: {}, messages: {}, kv: { deletes: 'hard' as const } };
const TABLES = Object.keys(SCHEMA);

const open: SyncEngine[] = [];

afterEach(async () => {
  for (const engine of open.splice(0)) await engine.close();
});

/** A device: its own IndexedDB, its own Convex connection, signed in as `userId`. */
async function device(deployment: TestDeployment, workspaceId: string, userId: string): Promise<SyncEngine> {
  const provider = new ConvexSyncProvider({
    client: deployment.connect(),
    tokenBroker: { getToken: async () => `user:${userId}` },
  });
  const engine = await openWorkspace({
    workspaceId,
    provider,
    schema: SCHEMA,
    syncedTables: SYNCED_TABLES,
    dexieOptions: { indexedDB: new IDBFactory(), IDBKeyRange },
    broadcast: false,
    locks: null,
    backoff: { baseMs: 5, maxMs: 50 },
    pushDebounceMs: 1,
  });
  open.push(engine);
  return engine;
}

async function twoDevices() {
  const deployment = new TestDeployment();
  const workspace = await workspaceWith(deployment.backend, 'alice', { bob: 'editor' });
  const a = await device(deployment, workspace, 'alice');
  const b = await device(deployment, workspace, 'bob');
  return { deployment, workspace, a, b };
}

/** Every synced table's rows, ordered by key. */
async function contents(engine: SyncEngine): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const table of TABLES) out[table] = await engine.db.table(table).orderBy(':id').toArray();
  return out;
}

/** The server's current rows (live ones, and tombstones of soft-delete tables), in the same shape. */
async function serverContents(deployment: TestDeployment, workspace: string): Promise<Record<string, unknown[]>> {
  const records = await deployment.backend.run((ctx) =>
    ctx.db.query('records').withIndex('by_key', (q) => q.eq('workspace_id', workspace)).collect(),
  );
  const out: Record<string, unknown[]> = {};
  for (const table of TABLES) {
    out[table] = records
      .filter((r) => r.table_name === table && (table !== 'kv' || !r.deleted))
      .map((r) => r.payload as unknown);
  }
  return out;
}

async function syncUntilQuiet(engines: SyncEngine[]): Promise<void> {
  for (let round = 0; round < 5; round++) {
    for (const engine of engines) {
      const result = await engine.sync();
      expect(result.error).toBeNull();
    }
    const pending = await Promise.all(engines.map((engine) => engine.pendingCount()));
    if (pending.every((count) => count === 0)) break;
  }
  for (const engine of engines) await engine.sync();
}

async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('two engines over ConvexSyncProvider converge', () => {
  test('run by run: concurrent writes, conflicts and deletes end in one state, the server included', async () => {
    const { deployment, workspace, a, b } = await twoDevices();
    await a.db.table('threads').put({ id: 't1', title: 'from a', project_id: null });
    await a.db.table('messages').bulkPut([
      { id: 'm1', thread_id: 't1', index: 0, role: 'user', data: 'hello' },
      { id: 'm2', thread_id: 't1', index: 1, role: 'assistant', data: 'hi' },
    ]);
    await a.db.table('kv').put({ id: 'theme', value: 'dark' });
    await b.db.table('threads').put({ id: 't2', title: 'from b', project_id: null });
    await b.db.table('kv').put({ id: 'theme', value: 'light' });
    await syncUntilQuiet([a, b]);
    expect(await contents(a)).toEqual(await contents(b));
    expect((await contents(a)).messages).toHaveLength(2);

    // Both edit the same rows concurrently; one deletes what the other edits.
    await a.db.table('messages').delete('m1');
    await b.db.table('messages').update('m1', { data: 'edited by b' });
    await b.db.table('threads').update('t1', { title: 'renamed by b' });
    await a.db.table('threads').update('t1', { title: 'renamed by a' });
    await a.db.table('kv').delete('theme');
    await b.db.table('kv').put({ id: 'font', value: 'mono' });
    await syncUntilQuiet([b, a]);

    const final = await contents(a);
    expect(await contents(b)).toEqual(final);
    expect(final).toEqual(await serverContents(deployment, workspace));
    expect(final.kv).toEqual([expect.objectContaining({ id: 'font', value: 'mono' })]);
  });

  test('by subscription: each engine sees the other\'s writes without a manual run', async () => {
    const { a, b } = await twoDevices();
    a.start();
    b.start();
    await a.db.table('threads').put({ id: 't1', title: 'live', project_id: null });
    await waitFor(async () => (await b.db.table('threads').get('t1'))?.title === 'live', 'b to see t1');
    await b.db.table('messages').put({ id: 'm1', thread_id: 't1', index: 0, role: 'user', data: 'reply' });
    await waitFor(async () => (await a.db.table('messages').get('m1'))?.data === 'reply', 'a to see m1');
    await b.db.table('threads').update('t1', { title: 'edited live' });
    await waitFor(async () => (await a.db.table('threads').get('t1'))?.title === 'edited live', 'a to see the edit');
    await a.stop();
    await b.stop();
    expect(await contents(a)).toEqual(await contents(b));
  });

  test('a seeded random interleaving of writes and runs converges', async () => {
    const { deployment, workspace, a, b } = await twoDevices();
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const engines = [a, b];
    for (let step = 0; step < 80; step++) {
      const engine = pick(engines);
      const action = random();
      const table = pick(['threads', 'messages', 'kv'] as const);
      const id = pick(['r1', 'r2', 'r3', 'r4']);
      if (action < 0.15) {
        expect((await engine.sync()).error).toBeNull();
      } else if (action < 0.3) {
        await engine.db.table(table).delete(id);
      } else {
        const row: Record<string, unknown> = { id, value: step };
        if (table === 'messages') Object.assign(row, { thread_id: 'r1', index: step, role: 'user', data: `s${step}` });
        if (table === 'threads') Object.assign(row, { title: `s${step}`, project_id: null });
        await engine.db.table(table).put(row);
      }
    }
    await syncUntilQuiet(engines);
    const final = await contents(a);
    expect(await contents(b)).toEqual(final);
    expect(final).toEqual(await serverContents(deployment, workspace));
  });
});
