/**
 * attachSync on an app's own database, shaped like OR3 Chat's: its schema
 * history and upgrade(), rows made before sync was switched on (adoption),
 * its per-table conventions, and databases of the engine's old table layout.
 * Devices are fake-indexeddb factories; the server is the real binary.
 */
import { Dexie } from 'dexie';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { attachSync, openWorkspace } from '../src/attach.js';
import type { AttachSyncOptions, SyncEngine } from '../src/engine.js';
import type { AdoptEvent } from '../src/events.js';
import { GatewayProvider } from '../src/gateway/gateway-provider.js';
import type { PendingOpRow } from '../src/outbox/index.js';
import type { SyncedTableOptions } from '../src/schema.js';
import type { SnapshotItem } from '@or3/sync-protocol';
import { OR3_SYNCED_TABLES, offlineRows, or3Database, seed } from './support/or3-chat.js';
import { gatewayPerFile } from './support/gateway-per-file.js';

const gateway = gatewayPerFile();
const { opened } = gateway;

/** The app's own bookkeeping tables (same names as the engine's old ones) and its local-only tables. */
const APP_OWN_TABLES = ['pending_ops', 'tombstones', 'sync_state', 'sync_runs', 'file_blobs', 'attachments'];
const SYNCED = Object.keys(OR3_SYNCED_TABLES);

async function workspace(): Promise<string> {
  const ownerToken = await gateway.server().token('alice');
  const workspaceId = await gateway.server().createWorkspace(ownerToken);
  await gateway.server().addMember(ownerToken, workspaceId, 'bob', 'editor');
  return workspaceId;
}

async function provider(userId: string): Promise<GatewayProvider> {
  const token = await gateway.server().token(userId);
  return new GatewayProvider({ baseUrl: gateway.server().baseUrl, getToken: () => token, pollIntervalMs: 50 });
}

async function attach(db: Dexie, workspaceId: string, userId: string, overrides: Partial<AttachSyncOptions> = {}): Promise<SyncEngine> {
  const engine = await attachSync(db, {
    workspaceId,
    provider: await provider(userId),
    syncedTables: OR3_SYNCED_TABLES,
    broadcast: false,
    locks: null,
    backoff: { baseMs: 5, maxMs: 50 },
    ...overrides,
  });
  opened.push(engine);
  return engine;
}

/** A table's rows without the sync stamps adoption adds, sorted by key. */
async function rowsOf(db: Dexie, table: string, drop: string[] = ['clock', 'hlc', 'order_key']): Promise<Record<string, unknown>[]> {
  const rows = (await db.table(table).toArray()) as Record<string, unknown>[];
  return rows.map((row) => Object.fromEntries(Object.entries(row).filter(([field]) => !drop.includes(field))));
}

/** The synced tables' rows as a second device must see them. */
async function syncedContents(db: Dexie): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const name of SYNCED) out[name] = await rowsOf(db, name, ['ref_count']);
  return out;
}

async function serverRecord(workspaceId: string, table: string, pk: string): Promise<SnapshotItem | null> {
  const token = await gateway.server().token('alice');
  const { status, body } = await gateway.server().api<{ record: SnapshotItem }>(token, 'GET', `/v1/workspaces/${workspaceId}/records/${table}/${encodeURIComponent(pk)}`);
  if (status === 404) return null;
  expect(status).toBe(200);
  return (body as unknown as { record?: SnapshotItem }).record ?? (body as unknown as SnapshotItem);
}

describe('attachSync on an OR3 Chat database', () => {
  it('a v16 database with data, upgraded to v17 by the app and attached: app tables untouched, every row kept, a second device gets the synced ones', async () => {
    const workspaceId = await workspace();
    const factoryA = new IDBFactory();
    const before = offlineRows('a');
    await seed(or3Database(workspaceId, factoryA, 16), before);

    const a = await attach(or3Database(workspaceId, factoryA, 17), workspaceId, 'alice');
    // The app's own tables of the same names as the engine's old ones, and its local-only tables: untouched.
    for (const table of APP_OWN_TABLES) expect(await rowsOf(a.db, table, [])).toEqual(before[table]);
    // The upgrade ran (not captured) and nothing was lost.
    expect((await a.db.table('posts').get('a-post0')) as Record<string, unknown>).toMatchObject({ postType: 'markdown' });
    expect((await a.db.table('posts').get('a-post0')) as Record<string, unknown>).not.toHaveProperty('type');

    expect((await a.sync()).error).toBeNull();
    expect(await a.pendingCount()).toBe(0);
    // After the first sync every pre-existing row is still there, the filtered ones too.
    for (const table of SYNCED) expect(await a.db.table(table).count()).toBe(before[table]?.length ?? 0);
    for (const table of APP_OWN_TABLES) expect(await rowsOf(a.db, table, [])).toEqual(before[table]);
    expect(await a.db.table('messages').get('a-m0')).toMatchObject({ clock: 2, data: { content: 'message 0' } });

    const b = await attach(or3Database(workspaceId, new IDBFactory(), 17), workspaceId, 'bob');
    expect((await b.sync()).error).toBeNull();
    const onA = await syncedContents(a.db);
    const onB = await syncedContents(b.db);
    // The secret kv row stays on A.
    expect(onB.kv).toEqual((onA.kv as { name: string }[]).filter((kv) => kv.name !== 'openrouter_api_key'));
    expect({ ...onB, kv: [] }).toEqual({ ...onA, kv: [] });
    expect(await b.db.table('messages').count()).toBe(4);
    for (const table of APP_OWN_TABLES) expect(await b.db.table(table).count()).toBe(0);
  });

  it('two devices used offline before sync converge on the union, LWW where both have a record', async () => {
    const workspaceId = await workspace();
    const factoryA = new IDBFactory();
    const factoryB = new IDBFactory();
    const rowsA = offlineRows('a');
    const rowsB = offlineRows('b');
    // Both have the same kv record (a deterministic id): B's has the higher clock and wins; a shared
    // project where the clocks tie: the first to reach the server stands (an unstamped row loses a tie).
    rowsA.kv!.push({ id: 'kv:theme', name: 'theme', value: 'light', clock: 3, created_at: 1, updated_at: 1 });
    rowsB.kv!.push({ id: 'kv:theme', name: 'theme', value: 'dark', clock: 5, created_at: 1, updated_at: 1 });
    rowsA.projects!.push({ id: 'shared', name: 'from a', clock: 4, created_at: 1, updated_at: 1 });
    rowsB.projects!.push({ id: 'shared', name: 'from b', clock: 4, created_at: 1, updated_at: 1 });
    await seed(or3Database(workspaceId, factoryA, 16), rowsA);
    await seed(or3Database(workspaceId, factoryB, 16), rowsB);

    const a = await attach(or3Database(workspaceId, factoryA), workspaceId, 'alice');
    const b = await attach(or3Database(workspaceId, factoryB), workspaceId, 'bob');
    expect((await a.sync()).error).toBeNull();
    expect((await b.sync()).error).toBeNull();
    expect((await a.sync()).error).toBeNull();

    const withoutSecrets = (contents: Record<string, unknown[]>) => ({
      ...contents,
      kv: (contents.kv as { name: string }[]).filter((kv) => kv.name !== 'openrouter_api_key'),
    });
    const onA = await syncedContents(a.db);
    expect(withoutSecrets(await syncedContents(b.db))).toEqual(withoutSecrets(onA));
    // The union: every row of both devices (secrets stay where they were).
    for (const table of SYNCED) {
      const ids = (await a.db.table(table).toCollection().primaryKeys()).map(String);
      const expected = new Set([...(rowsA[table] ?? []), ...(rowsB[table] ?? [])].map((row) => String(row.id ?? row.hash)));
      if (table === 'kv') expected.delete('kv:openrouter_api_key');
      for (const id of expected) expect(ids).toContain(id);
    }
    expect(await a.db.table('kv').get('kv:theme')).toMatchObject({ value: 'dark' });
    expect(await a.db.table('projects').get('shared')).toMatchObject({ name: 'from a' });
    expect(await b.db.table('projects').get('shared')).toMatchObject({ name: 'from a' });
    expect(await a.db.table('kv').get('kv:openrouter_api_key')).toMatchObject({ value: 'sk-a' });
    expect(await b.db.table('kv').get('kv:openrouter_api_key')).toMatchObject({ value: 'sk-b' });
  });

  it('a local row from before sync is deleted only by a server delete that wins LWW', async () => {
    const workspaceId = await workspace();
    // On the server: x and y, both deleted (each tombstone at clock 2).
    const b = await attach(or3Database(workspaceId, new IDBFactory()), workspaceId, 'bob');
    await b.db.table('projects').bulkPut([{ id: 'x', name: 'x' }, { id: 'y', name: 'y' }]);
    await b.db.table('projects').bulkDelete(['x', 'y']);
    expect((await b.sync()).error).toBeNull();
    expect(await serverRecord(workspaceId, 'projects', 'y')).toMatchObject({ deleted: true, clock: 2 });

    // A had both before sync: x at clock 1 (the delete wins), y at clock 5 (the delete loses).
    const factory = new IDBFactory();
    await seed(or3Database(workspaceId, factory), {
      projects: [
        { id: 'x', name: 'old x', clock: 1 },
        { id: 'y', name: 'edited y', clock: 5 },
      ],
    });
    const a = await attach(or3Database(workspaceId, factory), workspaceId, 'alice');
    expect((await a.sync()).error).toBeNull();
    expect(await a.db.table('projects').get('x')).toMatchObject({ deleted: true, clock: 2 });
    expect(await a.db.table('projects').get('y')).toMatchObject({ name: 'edited y', deleted: false, clock: 6 });
    expect(await serverRecord(workspaceId, 'projects', 'y')).toMatchObject({ deleted: false, clock: 6, payload: { name: 'edited y' } });
    expect((await b.sync()).error).toBeNull();
    expect(await b.db.table('projects').get('y')).toMatchObject({ name: 'edited y', deleted: false });
  });

  it('an app upgrade of a database that already syncs: what upgrade() rewrote is adopted and reaches the server', async () => {
    const workspaceId = await workspace();
    const factory = new IDBFactory();
    const v16 = await attach(or3Database(workspaceId, factory, 16), workspaceId, 'alice', { syncedTables: { posts: {}, threads: {} } });
    await v16.db.table('posts').put({ id: 'p1', title: 'hello', type: 'markdown' });
    await v16.db.table('threads').put({ id: 't1', title: 'untouched by the upgrade' });
    expect((await v16.sync()).error).toBeNull();
    await v16.close();

    const v17 = await attach(or3Database(workspaceId, factory, 17), workspaceId, 'alice');
    const adopted: AdoptEvent[] = [];
    v17.on('sync.adopt:action', (event) => adopted.push(event));
    expect((await v17.sync()).error).toBeNull();
    // Only the row the upgrade changed was queued.
    expect(adopted.at(-1)).toMatchObject({ phase: 'finished', queued: 1 });
    const stored = await serverRecord(workspaceId, 'posts', 'p1');
    expect(stored?.payload).toMatchObject({ post_type: 'markdown' });
    expect(stored?.payload).not.toHaveProperty('type');
    expect(await v17.db.table('posts').get('p1')).toMatchObject({ postType: 'markdown', clock: 2 });
  });

  it('the engine\'s tables survive an app upgrade: a pending write made at v16 is pushed after the app moves to v17', async () => {
    const workspaceId = await workspace();
    const factory = new IDBFactory();
    const v16 = await attach(or3Database(workspaceId, factory, 16), workspaceId, 'alice', { syncedTables: { threads: {} } });
    await v16.db.table('threads').put({ id: 'offline', title: 'written at v16, never synced' });
    expect(await v16.pendingCount()).toBe(1);
    const deviceId = v16.deviceId;
    await v16.close();

    const v17 = await attach(or3Database(workspaceId, factory, 17), workspaceId, 'alice');
    expect(v17.deviceId).toBe(deviceId);
    expect(await v17.pendingCount()).toBe(1);
    expect((await v17.sync()).error).toBeNull();
    expect(await serverRecord(workspaceId, 'threads', 'offline')).toMatchObject({ payload: { title: 'written at v16, never synced' } });
  });

  it('an adoption interrupted by a reload resumes after its last batch', async () => {
    const workspaceId = await workspace();
    const factory = new IDBFactory();
    const rows = offlineRows('r', { threads: 1200, messages: 0 });
    await seed(or3Database(workspaceId, factory), rows);

    const first = await attach(or3Database(workspaceId, factory), workspaceId, 'alice', { adoptBatchSize: 100 });
    const progress: AdoptEvent[] = [];
    first.on('sync.adopt:action', (event) => {
      progress.push(event);
      // The tab goes away in the middle of the adoption.
      if (event.phase === 'progress' && event.tableName === 'threads' && event.scanned >= 300) first.db.close();
    });
    // The closed database fails the run (recording it included).
    await first.sync().then((result) => expect(result.error).not.toBeNull(), (error: Error) => expect(error.name).toBe('DatabaseClosedError'));
    const interruptedAt = progress.at(-1)!.scanned;
    expect(interruptedAt).toBeGreaterThanOrEqual(300);
    expect(interruptedAt).toBeLessThan(1200 + 2);

    // The closed tab's rescan lease goes stale after RESCAN_LEASE_MS (30 s): let that time pass.
    const raw = new Dexie(`or3-db-${workspaceId}`, { indexedDB: factory, IDBKeyRange });
    await raw.open();
    await raw.table('_or3sync_state').update('rescan_lease', { 'value.at': 0 });
    raw.close();

    const resumed = await attach(or3Database(workspaceId, factory), workspaceId, 'alice', { adoptBatchSize: 100 });
    const after: AdoptEvent[] = [];
    resumed.on('sync.adopt:action', (event) => after.push(event));
    expect((await resumed.sync()).error).toBeNull();
    // It started where the interrupted one had committed, not from zero, and finished.
    expect(after[0]).toMatchObject({ phase: 'started', scanned: interruptedAt });
    expect(after.at(-1)).toMatchObject({ phase: 'finished' });
    expect(after.filter((e) => e.phase === 'progress').every((e) => e.scanned > interruptedAt)).toBe(true);
    expect(await resumed.db.table('threads').count()).toBe(1200);

    const other = await attach(or3Database(workspaceId, new IDBFactory()), workspaceId, 'bob');
    expect((await other.sync()).error).toBeNull();
    expect(await other.db.table('threads').count()).toBe(1200);
  });

  it('an adoption pushes while it queues: rows pushed before the swap are kept, writes and deletes made meanwhile win, a server version that wins LWW replaces the row', async () => {
    const workspaceId = await workspace();
    // The server has two of the records already: x-t1 newer than the local row (a clock tie the
    // unstamped local row loses), x-t2 older (the local row's clock 7 wins).
    const b = await attach(or3Database(workspaceId, new IDBFactory()), workspaceId, 'bob');
    expect((await b.sync()).error).toBeNull();
    await b.db.table('threads').put({ id: 'x-t1', project_id: 'x-p0', title: 'from b', created_at: 1, updated_at: 1 });
    await b.db.table('threads').put({ id: 'x-t2', project_id: 'x-p0', title: 'from b', created_at: 1, updated_at: 1 });
    expect((await b.sync()).error).toBeNull();

    const factory = new IDBFactory();
    const rows = offlineRows('x', { threads: 600, messages: 0 });
    rows.threads!.find((t) => t.id === 'x-t2')!.clock = 7;
    rows.threads!.find((t) => t.id === 'x-t2')!.title = 'local wins';
    await seed(or3Database(workspaceId, factory), rows);
    const a = await attach(or3Database(workspaceId, factory), workspaceId, 'alice', { adoptBatchSize: 100 });
    const pushedPks = new Set<string>();
    let pushesBeforeSwap = 0;
    let swapped = false;
    const push = a.provider.push.bind(a.provider);
    a.provider.push = (scope, ops) => {
      if (!swapped) pushesBeforeSwap += 1;
      for (const op of ops) pushedPks.add(op.pk);
      return push(scope, ops);
    };
    // Once x-t0 and x-t10 are on the server (their ops settled or about to), the app edits one and
    // deletes the other while the adoption goes on, before the swap.
    let edits: Promise<unknown> | null = null;
    a.on('sync.adopt:action', (event) => {
      if (edits || event.phase !== 'progress' || !pushedPks.has('x-t0') || !pushedPks.has('x-t10')) return;
      edits = Promise.all([
        a.db.table('threads').update('x-t0', { title: 'edited during adoption' }),
        a.db.table('threads').delete('x-t10'),
        // Another device's change committed between this device's pushes: the cursor must not pass it.
        b.db.table('threads').put({ id: 'x-from-b', project_id: 'x-p0', title: 'b during adoption', created_at: 1, updated_at: 1 }).then(() => b.sync()),
      ]);
    });
    // What the swap left, read before the pull (which brings back what the server has, but not a row's local-only fields).
    let afterSwap: Promise<number> | null = null;
    a.on('sync.rescan:action', (event) => {
      if (event.phase !== 'finished') return;
      swapped = true;
      afterSwap = a.db.table('threads').filter((t: { deleted?: boolean }) => !t.deleted).count();
    });
    expect((await a.sync()).error).toBeNull();
    expect(edits).not.toBeNull();
    await edits;
    expect(await afterSwap).toBe(599);
    expect(pushesBeforeSwap).toBeGreaterThanOrEqual(2);
    expect((await a.sync()).error).toBeNull();
    expect(await a.pendingCount()).toBe(0);

    // Every row kept locally (but the deleted one), each as LWW decided.
    const local = new Map(((await a.db.table('threads').toArray()) as { id: string; title: string; deleted?: boolean }[]).filter((t) => !t.deleted).map((t) => [t.id, t.title]));
    expect(local.size).toBe(600);
    expect(local.get('x-from-b')).toBe('b during adoption');
    expect(local.get('x-t0')).toBe('edited during adoption');
    expect(local.has('x-t10')).toBe(false);
    expect(local.get('x-t1')).toBe('from b');
    expect(local.get('x-t2')).toBe('local wins');
    expect(local.get('x-t599')).toBe('thread 599');
    expect(await serverRecord(workspaceId, 'threads', 'x-t10')).toMatchObject({ deleted: true });
    // A new device gets exactly that.
    const c = await attach(or3Database(workspaceId, new IDBFactory()), workspaceId, 'bob');
    expect((await c.sync()).error).toBeNull();
    const onC = new Map(((await c.db.table('threads').toArray()) as { id: string; title: string; deleted?: boolean }[]).filter((t) => !t.deleted).map((t) => [t.id, t.title]));
    expect(onC).toEqual(local);
  });

  it('a push moves the cursor past the device\'s own changes, never past another device\'s change committed between its pushes', async () => {
    const workspaceId = await workspace();
    const a = await attach(or3Database(workspaceId, new IDBFactory()), workspaceId, 'alice', { pushBatchSize: 2 });
    const b = await attach(or3Database(workspaceId, new IDBFactory()), workspaceId, 'bob');
    expect((await a.sync()).error).toBeNull();
    expect((await b.sync()).error).toBeNull();
    // Alone, a device's pushes need no pull: nothing of them comes back.
    await a.db.table('threads').bulkPut([1, 2, 3].map((n) => ({ id: `own-${n}`, project_id: 'p', title: `own ${n}`, created_at: 1, updated_at: 1 })));
    const alone = await a.sync();
    expect(alone).toMatchObject({ error: null, pushed: 3, pulled: 0 });

    // B's change lands between A's first push and its second.
    const push = a.provider.push.bind(a.provider);
    let pushes = 0;
    a.provider.push = async (scope, ops) => {
      const response = await push(scope, ops);
      if (++pushes === 1) {
        await b.db.table('threads').put({ id: 'between', project_id: 'p', title: 'from b', created_at: 1, updated_at: 1 });
        expect((await b.sync()).error).toBeNull();
      }
      return response;
    };
    await a.db.table('threads').bulkPut([4, 5, 6, 7].map((n) => ({ id: `own-${n}`, project_id: 'p', title: `own ${n}`, created_at: 1, updated_at: 1 })));
    const interleaved = await a.sync();
    expect(interleaved).toMatchObject({ error: null, pushed: 4 });
    expect(pushes).toBe(2);
    // B's change and A's own after it came with the pull; B's row is on A.
    expect(interleaved.pulled).toBeGreaterThanOrEqual(1);
    expect(await a.db.table('threads').get('between')).toMatchObject({ title: 'from b' });
    expect((await b.sync()).error).toBeNull();
    expect(await b.db.table('threads').count()).toBe(8);
    expect(await a.db.table('threads').count()).toBe(8);
  });

  it('an adopted op is never coalesced: a write to its record over the soft limit queues an op of its own, and the later write wins everywhere', async () => {
    const workspaceId = await workspace();
    const factory = new IDBFactory();
    await seed(or3Database(workspaceId, factory), offlineRows('c', { threads: 40, messages: 0 }));
    const engine = await attach(or3Database(workspaceId, factory), workspaceId, 'alice', { outboxSoftLimit: 10 });
    const pushed: string[] = [];
    const push = engine.provider.push.bind(engine.provider);
    engine.provider.push = (scope, ops) => {
      pushed.push(...ops.filter((op) => op.pk === 'c-t5').map((op) => String(op.payload?.title)));
      return push(scope, ops);
    };
    let edit: Promise<unknown> = Promise.resolve();
    engine.on('sync.rescan:action', (event) => {
      // Every row is queued (40 ops, over the limit of 10); the app edits one before the push.
      if (event.phase === 'finished') edit = engine.db.table('threads').update('c-t5', { title: 'edited' });
    });
    expect((await engine.sync()).error).toBeNull();
    await edit;
    expect((await engine.sync()).error).toBeNull();
    expect(pushed).toEqual(['thread 5', 'edited']);
    expect(await engine.pendingCount()).toBe(0);

    const other = await attach(or3Database(workspaceId, new IDBFactory()), workspaceId, 'bob');
    expect((await other.sync()).error).toBeNull();
    expect(await other.db.table('threads').count()).toBe(40);
    expect(await other.db.table('threads').get('c-t5')).toMatchObject({ title: 'edited' });
  });

  it('adoption again after the engine tables were lost: rows the server has are not pushed again, rows it lacks are', async () => {
    const workspaceId = await workspace();
    const factory = new IDBFactory();
    await seed(or3Database(workspaceId, factory), offlineRows('l'));
    const a = await attach(or3Database(workspaceId, factory), workspaceId, 'alice');
    expect((await a.sync()).error).toBeNull();
    await a.close();
    // The engine's tables are gone (say, cleared by a tool); a row is added without capture.
    const raw = new Dexie(`or3-db-${workspaceId}`, { indexedDB: factory, IDBKeyRange });
    await raw.open();
    for (const table of raw.tables) if (table.name.startsWith('_or3sync_')) await table.clear();
    await raw.table('threads').put({ id: 'l-new', project_id: 'l-p0', title: 'new', clock: 1, created_at: 1, updated_at: 1 });
    raw.close();

    const again = await attach(or3Database(workspaceId, factory), workspaceId, 'alice');
    const adopted: AdoptEvent[] = [];
    again.on('sync.adopt:action', (event) => adopted.push(event));
    expect((await again.sync()).error).toBeNull();
    expect(adopted.at(-1)).toMatchObject({ phase: 'finished', queued: 1 });
    expect(await serverRecord(workspaceId, 'threads', 'l-new')).toMatchObject({ pk: 'l-new' });
    expect(await again.db.table('threads').count()).toBe(4);
  });
});

describe('table conventions', () => {
  it('a streaming message (pending) is not captured, and is synced once it is final', async () => {
    const workspaceId = await workspace();
    const a = await attach(or3Database(workspaceId, new IDBFactory()), workspaceId, 'alice');
    const b = await attach(or3Database(workspaceId, new IDBFactory()), workspaceId, 'bob');
    await a.sync();
    await b.sync();
    const message = { id: 's1', thread_id: 't', index: 0, role: 'assistant', pending: true, data: { content: '' }, created_at: 1 };
    await a.db.table('messages').put(message);
    for (const chunk of ['Hel', 'Hello', 'Hello, world']) await a.db.table('messages').update('s1', { data: { content: chunk } });
    expect(await a.pendingCount()).toBe(0);
    await a.sync();
    await b.sync();
    expect(await b.db.table('messages').get('s1')).toBeUndefined();

    await a.db.table('messages').update('s1', { pending: false });
    const ops = (await a.db.table<PendingOpRow>('_or3sync_outbox').toArray()).filter((op) => op.pk === 's1');
    expect(ops).toHaveLength(1);
    expect(ops[0]!.payload).toMatchObject({ data: { content: 'Hello, world' }, pending: false });
    await a.sync();
    await b.sync();
    expect(await b.db.table('messages').get('s1')).toMatchObject({ data: { content: 'Hello, world' }, pending: false });
  });

  it('a secret kv row is never captured, put or deleted, and a rescan keeps it', async () => {
    const workspaceId = await workspace();
    const a = await attach(or3Database(workspaceId, new IDBFactory()), workspaceId, 'alice');
    await a.sync();
    await a.db.table('kv').put({ id: 'kv:openrouter_api_key', name: 'openrouter_api_key', value: 'sk-secret' });
    await a.db.table('kv').put({ id: 'kv:other', name: 'other', value: 1 });
    expect((await a.db.table<PendingOpRow>('_or3sync_outbox').toArray()).map((op) => op.pk)).toEqual(['kv:other']);
    await a.sync();
    expect(await serverRecord(workspaceId, 'kv', 'kv:openrouter_api_key')).toBeNull();
    expect((await a.rescan()).error).toBeNull();
    expect(await a.db.table('kv').get('kv:openrouter_api_key')).toMatchObject({ value: 'sk-secret' });
    await a.db.table('kv').delete('kv:openrouter_api_key');
    expect(await a.pendingCount()).toBe(0);
  });

  it('local-only fields are stripped before push and kept locally when a server version is applied', async () => {
    const workspaceId = await workspace();
    const a = await attach(or3Database(workspaceId, new IDBFactory()), workspaceId, 'alice');
    const b = await attach(or3Database(workspaceId, new IDBFactory()), workspaceId, 'bob');
    await a.db.table('file_meta').put({ hash: 'h1', name: 'a.png', kind: 'image', ref_count: 3, deleted: false });
    await a.sync();
    const stored = await serverRecord(workspaceId, 'file_meta', 'h1');
    expect(stored?.payload).toMatchObject({ hash: 'h1', name: 'a.png' });
    expect(stored?.payload).not.toHaveProperty('ref_count');

    await b.sync();
    expect(await b.db.table('file_meta').get('h1')).not.toHaveProperty('ref_count');
    await b.db.table('file_meta').update('h1', { name: 'renamed.png', ref_count: 1 });
    await b.sync();
    await a.sync();
    expect(await a.db.table('file_meta').get('h1')).toMatchObject({ name: 'renamed.png', ref_count: 3 });
    expect((await a.rescan()).error).toBeNull();
    expect(await a.db.table('file_meta').get('h1')).toMatchObject({ name: 'renamed.png', ref_count: 3 });
  });

  it('mapped fields travel under their wire name and come back under the local one', async () => {
    const workspaceId = await workspace();
    const a = await attach(or3Database(workspaceId, new IDBFactory()), workspaceId, 'alice');
    const b = await attach(or3Database(workspaceId, new IDBFactory()), workspaceId, 'bob');
    await a.db.table('posts').put({ id: 'p1', title: 'hello', postType: 'markdown', deleted: false });
    await a.sync();
    const stored = await serverRecord(workspaceId, 'posts', 'p1');
    expect(stored?.payload).toMatchObject({ post_type: 'markdown' });
    expect(stored?.payload).not.toHaveProperty('postType');
    await b.sync();
    const onB = await b.db.table('posts').get('p1');
    expect(onB).toMatchObject({ postType: 'markdown' });
    expect(onB).not.toHaveProperty('post_type');
    expect(await b.db.table('posts').where('postType').equals('markdown').count()).toBe(1);
  });

  it('bad declarations fail at attach, naming the table and the field', async () => {
    const cases: [Record<string, SyncedTableOptions>, RegExp][] = [
      [{ file_meta: { primaryKey: 'hash', localOnlyFields: ['clock'] } }, /table file_meta, field clock/],
      [{ posts: { wireNames: { postType: 'hlc' } } }, /table posts, field postType: cannot be renamed to the protocol field hlc/],
      [{ posts: { wireNames: { postType: 'kind', title: 'kind' } } }, /table posts, field title: its wire name kind/],
      [{ posts: { wireNames: { postType: 'title', title: 'heading' } } }, /table posts, field postType: its wire name title is itself a renamed/],
      [{ messages: { shouldSync: 'pending' as never } }, /table messages, shouldSync: must be a function/],
      [{ threads: { primaryKey: 'uuid' } }, /table threads, primaryKey: is uuid but the app's schema keys the table by "id"/],
      [{ threads: { delete: 'hard' } as never }, /table threads, option delete: is not a table option/],
      [{ file_meta: { localOnlyFields: ['ref_count'], wireNames: { ref_count: 'refs' }, primaryKey: 'hash' } }, /table file_meta, field ref_count: is local-only/],
      [{ chats: {} }, /synced table chats is not in the app's schema/],
    ];
    for (const [syncedTables, message] of cases) {
      const db = or3Database('bad', new IDBFactory());
      await expect(attach(db, 'bad', 'alice', { syncedTables })).rejects.toThrow(message);
      expect(db.isOpen()).toBe(false);
    }
    await expect(attach(or3Database('bad', new IDBFactory()), 'bad', 'alice', { adoptBatchSize: 0 })).rejects.toThrow(/adoptBatchSize must be a positive integer/);
    const prefixed = or3Database('bad', new IDBFactory());
    prefixed.version(18).stores({ _or3sync_mine: 'id' });
    await expect(attach(prefixed, 'bad', 'alice')).rejects.toThrow(/_or3sync_mine is reserved/);
  });
});

describe('the old table layout', () => {
  it('a database of the engine before the prefix is migrated: its pending writes are pushed, its cursor and device id kept', async () => {
    const workspaceId = await workspace();
    const factory = new IDBFactory();
    const name = `or3-db-${workspaceId}`;
    // What the previous engine left: its tables under the old names, a pending op, a cursor of 0.
    const old = new Dexie(name, { indexedDB: factory, IDBKeyRange });
    old.version(1).stores({
      threads: 'id',
      pending_ops: '++seq, [table_name+pk], status',
      sync_state: 'key',
      sync_tombstones: '[table_name+pk], server_version',
      sync_runs: '++id, started_at',
      sync_staging: '[table_name+pk]',
    });
    await old.open();
    const deviceId = '0123456789abcdef0123456789abcdef';
    const hlc = `${String(Date.now()).padStart(13, '0')}-000000-${deviceId}`;
    const row = { id: 't1', title: 'offline', clock: 1, hlc, deleted: false, deleted_at: null, created_at: 1, updated_at: 1 };
    await old.table('threads').put(row);
    await old.table('pending_ops').add({
      op_id: '0190a7e2-1111-4222-8333-444455556666', table_name: 'threads', operation: 'put', pk: 't1', payload: row, clock: 1, hlc,
      device_id: deviceId, status: 'pending', sent: 0, attempts: 0, error: null, created_at: 1,
    });
    await old.table('sync_state').bulkPut([
      { key: 'device_id', value: deviceId },
      { key: 'cursor:*', value: 0 },
      { key: 'hlc', value: { ms: Date.now(), counter: 0, tombstone_tables: [] } },
    ]);
    await old.table('sync_runs').add({ started_at: 1, finished_at: 2, pushed: 0, pulled: 0, conflicts: 0, error: null });
    old.close();

    const engine = await openWorkspace({
      workspaceId, provider: await provider('alice'), schema: { threads: 'id' },
      dexieOptions: { indexedDB: factory, IDBKeyRange }, broadcast: false, locks: null,
    });
    opened.push(engine);
    expect(engine.deviceId).toBe(deviceId);
    expect(await engine.pendingCount()).toBe(1);
    const adoptions: AdoptEvent[] = [];
    engine.on('sync.adopt:action', (event) => adoptions.push(event));
    const rescans: string[] = [];
    engine.on('sync.rescan:action', (event) => rescans.push(event.phase));
    expect((await engine.sync()).error).toBeNull();
    expect(rescans).toEqual([]);
    expect(adoptions).toEqual([]);
    expect(await engine.pendingCount()).toBe(0);
    expect(await engine.failedOps()).toEqual([]);
    expect(await serverRecord(workspaceId, 'threads', 't1')).toMatchObject({ op_id: '0190a7e2-1111-4222-8333-444455556666' });
    expect(await engine.db.table('_or3sync_runs').count()).toBe(2);
    expect(await engine.db.table('pending_ops').count()).toBe(0);
  });

  it("an app table of an old engine name and shape is the app's: never migrated, even keyed like the old engine's", async () => {
    const workspaceId = await workspace();
    const factory = new IDBFactory();
    const appDb = () => {
      const db = new Dexie(`or3-db-${workspaceId}`, { indexedDB: factory, IDBKeyRange });
      db.version(1).stores({ threads: 'id', sync_state: 'key', pending_ops: '++seq, status' });
      return db;
    };
    await seed(appDb(), {
      threads: [{ id: 't1', title: 'mine' }],
      sync_state: [{ key: 'device_id', value: 'the app keeps its own device id here' }],
      pending_ops: [{ seq: 1, status: 'queued', what: 'the app outbox' }],
    });
    const engine = await attach(appDb(), workspaceId, 'alice', { syncedTables: ['threads'] });
    expect(engine.deviceId).not.toBe('the app keeps its own device id here');
    expect(await engine.db.table('sync_state').toArray()).toEqual([{ key: 'device_id', value: 'the app keeps its own device id here' }]);
    expect(await engine.db.table('pending_ops').toArray()).toEqual([{ seq: 1, status: 'queued', what: 'the app outbox' }]);
    expect((await engine.sync()).error).toBeNull();
    expect(await serverRecord(workspaceId, 'threads', 't1')).toMatchObject({ pk: 't1' });
  });
});
