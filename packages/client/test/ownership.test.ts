/**
 * A local database belongs to one user and one workspace (PROTOCOL.md section 6,
 * "Users"): the workspace binding, wipe-and-hold when another user opens it, what
 * sign-out leaves, and whose token the provider holds. fake-indexeddb devices.
 */
import { Dexie } from 'dexie';
import { IDBKeyRange } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import { attachSync } from '../src/attach.js';
import type { SyncEngine } from '../src/engine.js';
import { workspaceDatabaseName } from '../src/engine.js';
import { GatewayProvider } from '../src/gateway/gateway-provider.js';
import type { CaptureRuntime } from '../src/capture/index.js';
import { outbox, outboxTable } from '../src/outbox/index.js';
import { OWNERSHIP_KEYS, tokenUserMismatch, WorkspaceMismatchError } from '../src/people/ownership.js';
import { removeUserData, UnsyncedWritesError } from '../src/people/sign-out.js';
import { takeOwnership } from '../src/people/wipe.js';
import { ENGINE_TABLES, resolveSyncedTables, STATE_KEYS, STATE_TABLE, TOMBSTONES_TABLE } from '../src/schema.js';
import { APP_SCHEMA, makeDevice, SYNCED_TABLES, type TestDevice } from './support/devices.js';
import { ScriptedProvider } from './support/scripted-provider.js';

const opened: SyncEngine[] = [];
const databases: Dexie[] = [];
afterEach(async () => {
  for (const engine of opened.splice(0)) await engine.close();
  for (const db of databases.splice(0)) db.close();
});

async function open(device: TestDevice, workspaceId?: string): Promise<SyncEngine> {
  const engine = await device.open(workspaceId ? { workspaceId } : {});
  opened.push(engine);
  return engine;
}

/** The device's database of `workspaceId` opened beside the engine, with a capture runtime of the test's own. */
function database(device: TestDevice, workspaceId: string): { db: Dexie; runtime: CaptureRuntime } {
  const db = new Dexie(workspaceDatabaseName(workspaceId), { indexedDB: device.factory, IDBKeyRange });
  db.version(1).stores({ ...APP_SCHEMA, ...ENGINE_TABLES });
  databases.push(db);
  const runtime = { tables: resolveSyncedTables(SYNCED_TABLES), remoteTransactions: new WeakSet() } as CaptureRuntime;
  return { db, runtime };
}

/** alice's device: she wrote two threads and deleted a third while offline (nothing pushed). */
async function alicesOfflineWrites(): Promise<TestDevice> {
  const device = makeDevice('ws1', new ScriptedProvider());
  const engine = await open(device);
  await engine.db.table('threads').bulkPut([
    { id: 't1', title: 'alice private' },
    { id: 't2', title: 'alice plans' },
    { id: 't3', title: 'to delete' },
  ]);
  await engine.db.table('threads').delete('t3');
  await engine.db.table('kv').put({ id: 'k1', value: 'alice kv' });
  await engine.db.table(STATE_TABLE).put({ key: STATE_KEYS.cursor('*'), value: 7 });
  await engine.close();
  return device;
}

async function syncedRows(db: Dexie): Promise<number> {
  let count = 0;
  for (const name of Object.keys(SYNCED_TABLES)) count += await db.table(name).count();
  return count;
}

describe('workspace binding', () => {
  it('attaching workspace 2 to the database of workspace 1 fails naming both ids, and changes nothing', async () => {
    const device = makeDevice('ws1', new ScriptedProvider());
    const first = await open(device);
    await first.db.table('threads').put({ id: 't1', title: 'in ws1' });
    await first.close();
    // One Dexie name for two workspaces: the misuse the binding catches.
    const db = new Dexie(workspaceDatabaseName('ws1'), { indexedDB: device.factory, IDBKeyRange });
    db.version(1).stores(APP_SCHEMA);
    const provider = new ScriptedProvider();
    const error = await attachSync(db, { workspaceId: 'ws2', provider, syncedTables: SYNCED_TABLES, broadcast: false, locks: null }).then(
      (engine) => {
        opened.push(engine);
        return null;
      },
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(WorkspaceMismatchError);
    expect(error).toMatchObject({ boundWorkspaceId: 'ws1', workspaceId: 'ws2', databaseName: 'or3-db-ws1' });
    expect((error as Error).message).toMatch(/ws1.*ws2/);
    expect(db.isOpen()).toBe(false);
    const again = await open(device);
    expect(await again.pendingCount()).toBe(1);
    expect(await again.db.table(STATE_TABLE).get(OWNERSHIP_KEYS.workspace)).toMatchObject({ value: 'ws1' });
  });

  it('a database is bound to the workspace of its first attach and opens again for it', async () => {
    const device = makeDevice('ws1', new ScriptedProvider());
    await (await open(device)).close();
    expect((await open(device)).workspaceId).toBe('ws1');
  });
});

describe('another user opens the database: wipe-and-hold', () => {
  it('a database from before ownership is claimed as it is: rows stay, its ops become the first user\'s', async () => {
    const { db, runtime } = database(await alicesOfflineWrites(), 'ws1');
    expect(await takeOwnership(db, runtime, 'alice')).toEqual({ previousOwner: null, held: 0, released: 0, wiped: false });
    expect(await syncedRows(db)).toBe(4);
    expect((await outboxTable(db).toArray()).map((op) => [op.owner, op.status])).toEqual(Array(5).fill(['alice', 'pending']));
    expect(await takeOwnership(db, runtime, 'alice')).toMatchObject({ previousOwner: 'alice', wiped: false });
  });

  it('the next user sees none of the previous owner\'s rows, and her unsynced writes are held for her', async () => {
    const { db, runtime } = database(await alicesOfflineWrites(), 'ws1');
    await takeOwnership(db, runtime, 'alice');
    expect(await takeOwnership(db, runtime, 'bob')).toEqual({ previousOwner: 'alice', held: 5, released: 0, wiped: true });
    expect(await syncedRows(db)).toBe(0);
    expect(await db.table(TOMBSTONES_TABLE).count()).toBe(0);
    // A bootstrap rescan is owed: no cursor.
    expect(await db.table(STATE_TABLE).get(STATE_KEYS.cursor('*'))).toBeUndefined();
    expect((await outbox.heldOps(db)).map((op) => [op.owner, op.error?.code])).toEqual(Array(5).fill(['alice', 'other_user']));
    expect(await db.table(STATE_TABLE).get(OWNERSHIP_KEYS.owner)).toMatchObject({ value: 'bob' });
  });

  it('her writes come back when she opens it again: pending, rows and tombstones rewritten from the ops', async () => {
    const { db, runtime } = database(await alicesOfflineWrites(), 'ws1');
    await takeOwnership(db, runtime, 'alice');
    await takeOwnership(db, runtime, 'bob');
    await db.transaction('rw', [...Object.keys(SYNCED_TABLES), ...Object.keys(ENGINE_TABLES)], async (tx) => {
      runtime.remoteTransactions.add(tx.idbtrans);
      await db.table('threads').put({ id: 'b1', title: 'bob row', clock: 1, hlc: 'x' });
      await outboxTable(db).add({ ...(await outboxTable(db).toCollection().first())!, seq: undefined, op_id: 'bob-op', status: 'pending', owner: 'bob' });
    });
    expect(await takeOwnership(db, runtime, 'alice')).toEqual({ previousOwner: 'bob', held: 1, released: 5, wiped: true });
    expect((await db.table('threads').toArray()).map((t) => [t.id, t.title, t.deleted])).toEqual([
      ['t1', 'alice private', false],
      ['t2', 'alice plans', false],
      ['t3', 'to delete', true],
    ]);
    expect(await db.table('kv').get('k1')).toMatchObject({ value: 'alice kv' });
    expect(await db.table(TOMBSTONES_TABLE).get(['threads', 't3'])).toMatchObject({ server_version: null });
    expect((await outboxTable(db).toArray()).map((op) => [op.owner, op.status])).toEqual([
      ...Array(5).fill(['alice', 'pending']),
      ['bob', 'held'],
    ]);
  });
});

describe('what sign-out leaves', () => {
  async function ownedByAlice() {
    const { db, runtime } = database(await alicesOfflineWrites(), 'ws1');
    await takeOwnership(db, runtime, 'alice');
    return { db, runtime };
  }

  it('refuses while the user has unsynced writes, with their count, and changes nothing', async () => {
    const { db, runtime } = await ownedByAlice();
    const refused = await removeUserData(db, runtime, 'alice', 'refuse').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(UnsyncedWritesError);
    expect(refused).toMatchObject({ count: 5 });
    expect(await syncedRows(db)).toBe(4);
    expect(await outbox.heldOps(db)).toEqual([]);
  });

  it('hold keeps her writes, held for her, and nothing else of hers', async () => {
    const { db, runtime } = await ownedByAlice();
    expect(await removeUserData(db, runtime, 'alice', 'hold')).toBe('held_for_user');
    expect(await syncedRows(db)).toBe(0);
    expect((await outbox.heldOps(db)).map((op) => [op.owner, op.error?.code])).toEqual(Array(5).fill(['alice', 'signed_out']));
    expect(await db.table(STATE_TABLE).get(OWNERSHIP_KEYS.owner)).toBeUndefined();
    // Her next sign-in gives them back.
    expect(await takeOwnership(db, runtime, 'alice')).toMatchObject({ released: 5, held: 0 });
    expect(await syncedRows(db)).toBe(4);
  });

  it('discard deletes the database when no other user\'s writes wait in it', async () => {
    const device = await alicesOfflineWrites();
    const { db, runtime } = database(device, 'ws1');
    await takeOwnership(db, runtime, 'alice');
    expect(await removeUserData(db, runtime, 'alice', 'discard')).toBe('deleted');
    expect(await Dexie.exists(workspaceDatabaseName('ws1'))).toBe(false);
    expect((await device.factory.databases()).map((d) => d.name)).toEqual([]);
  });

  it('discard keeps another user\'s held writes, and only them', async () => {
    const { db, runtime } = await ownedByAlice();
    await takeOwnership(db, runtime, 'bob');
    expect(await removeUserData(db, runtime, 'bob', 'refuse')).toBe('held_for_others');
    expect(await syncedRows(db)).toBe(0);
    expect((await outbox.heldOps(db)).map((op) => op.owner)).toEqual(Array(5).fill('alice'));
    expect(await outboxTable(db).count()).toBe(5);
  });
});

describe('whose token the provider holds', () => {
  /** An unsigned JWT with `claims` (the client never verifies). */
  function jwt(claims: Record<string, unknown>): string {
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    return `${part({ alg: 'RS256' })}.${part(claims)}.sig`;
  }
  const gateway = (token: string) => new GatewayProvider({ baseUrl: 'http://127.0.0.1:9', getToken: () => token, WebSocket: null });

  it('the gateway provider reads the user from the token\'s sub, without verifying it', async () => {
    expect(await gateway(jwt({ sub: 'alice', exp: 1 })).tokenUserId()).toBe('alice');
    expect(await gateway(jwt({ exp: 1 })).tokenUserId()).toBeNull();
    expect(await gateway('opaque-token').tokenUserId()).toBeNull();
  });

  it('a token of another user is a mismatch; a provider that cannot tell is taken at its word', async () => {
    expect(await tokenUserMismatch(gateway(jwt({ sub: 'bob' })), 'alice')).toBe('bob');
    expect(await tokenUserMismatch(gateway(jwt({ sub: 'alice' })), 'alice')).toBeNull();
    expect(await tokenUserMismatch(new ScriptedProvider(), 'alice')).toBeNull();
  });
});
