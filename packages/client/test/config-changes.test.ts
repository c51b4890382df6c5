/**
 * An app's releases and a server's configuration change under running
 * devices (issue 26): engines on fake-indexeddb against the real or3-sync
 * binary, restarted with another `--tables` where a test needs it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SyncEngine } from '../src/engine.js';
import type { ErrorEvent } from '../src/events.js';
import { GatewayProvider } from '../src/gateway/gateway-provider.js';
import { APP_SCHEMA, makeDevice, SYNCED_TABLES } from './support/devices.js';
import { startServer, type TestServer } from './support/server.js';

const DEFAULT_TABLES = 'threads,messages,projects,posts,kv,file_meta,notifications';
let server: TestServer;
const opened: SyncEngine[] = [];

beforeAll(async () => {
  server = await startServer(['--tables', `${DEFAULT_TABLES},tags`]);
});
afterAll(async () => {
  await server?.stop();
});
afterEach(async () => {
  for (const engine of opened.splice(0)) await engine.close();
});

async function workspace(): Promise<string> {
  const owner = await server.token('alice');
  const workspaceId = await server.createWorkspace(owner);
  await server.addMember(owner, workspaceId, 'bob', 'editor');
  return workspaceId;
}

/** A device of `userId`; each `open` is a release of the app (its schema and synced tables). */
async function device(workspaceId: string, userId: string) {
  const token = await server.token(userId);
  const provider = new GatewayProvider({ baseUrl: server.baseUrl, getToken: () => token, pollIntervalMs: 50 });
  const dev = makeDevice(workspaceId, provider, { outboxPollMs: 100 });
  return {
    async open(release: { tables?: Record<string, string>; synced?: Record<string, object>; version?: number } = {}) {
      const engine = await dev.open({
        schema: { ...APP_SCHEMA, ...release.tables },
        syncedTables: { ...SYNCED_TABLES, ...release.synced },
        schemaVersion: release.version ?? 1,
      });
      opened.push(engine);
      return engine;
    },
  };
}

async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('a release and the server configuration change', () => {
  it('writes rejected unknown_table are held, then reach the server and another device with no app call once the server syncs the table', async () => {
    const workspaceId = await workspace();
    const notes = { tables: { notes: 'id' }, synced: { notes: {} } };
    const alice = await (await device(workspaceId, 'alice')).open(notes);
    const errors: ErrorEvent[] = [];
    alice.on('sync.error:action', (event) => errors.push(event));
    await alice.db.table('notes').put({ id: 'n1', text: 'kept' });
    await alice.sync();

    // Reported before any write reached the server, naming the flag that fixes it; the write is held, not failed.
    expect(errors[0]).toMatchObject({ code: 'unknown_table', tableName: 'notes', held: true });
    expect(errors[0]!.message).toContain('--tables');
    expect(await alice.failedOps()).toEqual([]);
    expect(await alice.heldOps()).toEqual([expect.objectContaining({ pk: 'n1', status: 'held' })]);
    expect(alice.status).toMatchObject({ state: 'held', held: 1 });

    alice.start();
    await waitFor(() => alice.status.channel === 'up');
    expect(alice.status.state).toBe('held');
    await server.restart(undefined, ['--tables', `${DEFAULT_TABLES},tags,notes`]);

    const bob = await (await device(workspaceId, 'bob')).open(notes);
    bob.start();
    await waitFor(async () => (await bob.db.table('notes').get('n1')) !== undefined, 15_000);
    expect(await bob.db.table('notes').get('n1')).toMatchObject({ text: 'kept' });
    await waitFor(() => alice.status.state === 'synced');
    expect(await alice.heldOps()).toEqual([]);
    await server.restart(undefined, ['--tables', `${DEFAULT_TABLES},tags`]);
  });

  for (const bump of [false, true]) {
    it(`a device moving to a release that syncs a new table receives the rows written before (${bump ? 'with' : 'without'} a Dexie version bump)`, async () => {
      const workspaceId = await workspace();
      const tags = { tables: { tags: 'id' }, synced: { tags: {} } };
      const alice = await (await device(workspaceId, 'alice')).open(tags);
      const bobDevice = await device(workspaceId, 'bob');
      let bob = await bobDevice.open();
      await bob.sync();
      await alice.db.table('tags').bulkPut([{ id: 't1', name: 'red' }, { id: 't2', name: 'blue' }]);
      await alice.db.table('threads').put({ id: 'th1' });
      await alice.sync();
      // Bob's old release pulls past the tags' changes without keeping them.
      await bob.sync();
      expect(await bob.db.table('threads').get('th1')).toBeDefined();
      await bob.close();

      bob = await bobDevice.open({ ...tags, version: bump ? 2 : 1 });
      await bob.db.table('tags').put({ id: 't3', name: 'local' });
      await bob.sync();
      expect((await bob.db.table('tags').toArray()).map((t) => t.id).sort()).toEqual(['t1', 't2', 't3']);
      await alice.sync();
      expect(await alice.db.table('tags').get('t3')).toMatchObject({ name: 'local' });
    });
  }

  it('a newly local-only field stays on the device and leaves the wire from the next write on', async () => {
    const workspaceId = await workspace();
    const aliceDevice = await device(workspaceId, 'alice');
    const alice = await aliceDevice.open();
    const bob = await (await device(workspaceId, 'bob')).open();
    await alice.db.table('threads').put({ id: 'th1', title: 'shared', draft: 'v1' });
    await alice.sync();
    await bob.sync();
    expect(await bob.db.table('threads').get('th1')).toMatchObject({ draft: 'v1' });
    await alice.close();

    const next = await aliceDevice.open({ synced: { threads: { localOnlyFields: ['draft'] } } });
    await next.db.table('threads').update('th1', { title: 'renamed', draft: 'v2' });
    await next.sync();
    await bob.sync();
    // Whole-row last-writer-wins: the row goes out without the field, so the server and other devices drop it; the device keeps its own.
    expect(await bob.db.table('threads').get('th1')).toMatchObject({ title: 'renamed' });
    expect((await bob.db.table('threads').get('th1')).draft).toBeUndefined();
    expect(await next.db.table('threads').get('th1')).toMatchObject({ title: 'renamed', draft: 'v2' });
  });
});

describe('failed ops', () => {
  it('a failed never-synced create: discarding keeps the local row, restoring the server copy removes it, retrying pushes it', async () => {
    const workspaceId = await workspace();
    const token = await server.token('alice');
    const provider = (maxPayloadBytes?: number) => new GatewayProvider({ baseUrl: server.baseUrl, getToken: () => token, maxPayloadBytes });
    const alice = makeDevice(workspaceId, provider(200));
    let engine = await alice.open();
    opened.push(engine);
    const big = { id: 'big', title: 'x'.repeat(300) };
    const failOnce = async () => {
      await engine.db.table('threads').put(big);
      await engine.sync();
      const [failed] = await engine.failedOps();
      expect(failed).toMatchObject({ pk: 'big', error: { code: 'payload_too_large' } });
      return failed!.op_id;
    };

    await engine.discardFailedOp(await failOnce());
    expect(await engine.db.table('threads').get('big')).toMatchObject(big);
    expect(await engine.failedOps()).toEqual([]);

    await engine.restoreServerCopy(await failOnce());
    expect(await engine.db.table('threads').get('big')).toBeUndefined();

    const opId = await failOnce();
    expect(engine.status).toMatchObject({ state: 'attention', lastError: expect.objectContaining({ code: 'payload_too_large' }) });
    await engine.close();
    // The next release lifts the limit: the op is retried and reaches the server.
    engine = await alice.open({ provider: provider() });
    opened.push(engine);
    expect(engine.status.state).toBe('attention');
    await engine.retryFailedOp(opId);
    await engine.sync();
    const record = await server.api<{ payload: { title: string } }>(token, 'GET', `/v1/workspaces/${workspaceId}/records/threads/big`);
    expect(record.body.payload.title).toBe(big.title);
    expect(engine.status.state).toBe('synced');
  });
});

describe('status', () => {
  it('the gateway killed with no write pending: not synced within 5 s', async () => {
    const workspaceId = await workspace();
    const bob = await (await device(workspaceId, 'bob')).open();
    bob.start();
    await waitFor(() => bob.status.state === 'synced');
    await server.kill();
    const killedAt = Date.now();
    await waitFor(() => bob.status.state !== 'synced', 5_000);
    expect(Date.now() - killedAt).toBeLessThan(5_000);
    expect(bob.status.state).toBe('offline');
    await server.restart();
  });
});
