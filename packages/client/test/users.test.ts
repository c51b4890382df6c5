/**
 * People sharing one browser (PROTOCOL.md section 6, "Users"), against the real
 * gateway binary: one fake-indexeddb factory is the browser, each user brings
 * their own token. Another user's writes are never pushed with your token nor
 * shown to you, and come back to their author; sign-out refuses to drop unsynced
 * writes unless told; a demoted editor keeps reading; a removed member forgets
 * the workspace; a database bound to one workspace never syncs another.
 */
import { Dexie } from 'dexie';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { attachSync, openWorkspace, type OpenWorkspaceOptions } from '../src/attach.js';
import { workspaceDatabaseName, type SyncEngine } from '../src/engine.js';
import { GatewayProvider } from '../src/gateway/gateway-provider.js';
import { UnsyncedWritesError, WorkspaceMismatchError } from '../src/index.js';
import type { ChangesPage, PushOp } from '@or3/sync-protocol';
import { APP_SCHEMA, SYNCED_TABLES } from './support/devices.js';
import { gatewayPerFile } from './support/gateway-per-file.js';

const gateway = gatewayPerFile();
const { opened } = gateway;

/** One browser: one IndexedDB, its network switchable, every push request recorded with the user whose token sent it. */
interface SharedBrowser {
  factory: IDBFactory;
  online: boolean;
  pushes: { user: string; ops: PushOp[] }[];
  open(user: string, workspaceId: string, overrides?: Partial<OpenWorkspaceOptions>): Promise<SyncEngine>;
  databases(): Promise<string[]>;
}

function sharedBrowser(): SharedBrowser {
  const browser: SharedBrowser = {
    factory: new IDBFactory(),
    online: true,
    pushes: [],
    async open(user, workspaceId, overrides = {}) {
      const token = await gateway.server().token(user);
      const provider = new GatewayProvider({
        baseUrl: gateway.server().baseUrl,
        getToken: () => token,
        pollIntervalMs: 50,
        fetch: async (input, init) => {
          if (!browser.online) throw new TypeError('fetch failed: offline');
          if (String(input).endsWith('/push')) browser.pushes.push({ user, ops: (JSON.parse(String(init?.body)) as { ops: PushOp[] }).ops });
          return fetch(input, init);
        },
      });
      const engine = await openWorkspace({
        workspaceId,
        userId: user,
        provider,
        schema: APP_SCHEMA,
        syncedTables: SYNCED_TABLES,
        dexieOptions: { indexedDB: browser.factory, IDBKeyRange },
        broadcast: false,
        locks: null,
        backoff: { baseMs: 5, maxMs: 50 },
        ...overrides,
      });
      opened.push(engine);
      return engine;
    },
    async databases() {
      return (await browser.factory.databases()).map((d) => d.name!).sort();
    },
  };
  return browser;
}

/** alice owns it; the others are editors. */
async function workspace(...editors: string[]): Promise<{ workspaceId: string; ownerToken: string }> {
  const ownerToken = await gateway.server().token('alice');
  const workspaceId = await gateway.server().createWorkspace(ownerToken);
  for (const editor of editors) await gateway.server().addMember(ownerToken, workspaceId, editor, 'editor');
  return { workspaceId, ownerToken };
}

/** The server's log of `workspaceId`, read as its owner. */
async function serverLog(workspaceId: string): Promise<ChangesPage['changes']> {
  const { status, body } = await gateway.server().api<ChangesPage>(await gateway.server().token('alice'), 'GET', `/v1/workspaces/${workspaceId}/changes?cursor=0&limit=1000`, undefined, {
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

describe('another user opens the database', () => {
  it("alice's offline write in a shared workspace is never pushed with bob's token, never shown to him, and reaches the server when she is back", async () => {
    const { workspaceId } = await workspace('bob');
    const browser = sharedBrowser();
    const alice = await browser.open('alice', workspaceId);
    await alice.db.table('threads').put({ id: 'shared', title: 'agreed by both' });
    expect((await alice.sync()).error).toBeNull();
    browser.online = false;
    await alice.db.table('threads').put({ id: 'alice-note', title: "alice's offline words" });
    await alice.db.table('threads').update('shared', { title: "alice's offline edit" });
    const [aliceOp, aliceEdit] = await alice.db.table('_or3sync_outbox').toArray();
    await alice.close();
    browser.online = true;

    // bob signs in on the same browser and opens the workspace: before his first sync, nothing of hers shows.
    const bob = await browser.open('bob', workspaceId);
    expect(await bob.db.table('threads').toArray()).toEqual([]);
    expect((await bob.heldOps()).map((op) => [op.op_id, op.owner])).toEqual([
      [aliceOp.op_id, 'alice'],
      [aliceEdit.op_id, 'alice'],
    ]);
    await bob.db.table('threads').put({ id: 'bob-note', title: 'from bob' });
    expect((await bob.sync()).error).toBeNull();
    expect(await bob.db.table('threads').get('alice-note')).toBeUndefined();
    // Her held edit (a later stamp) does not keep the server's version from him.
    expect(await bob.db.table('threads').get('shared')).toMatchObject({ title: 'agreed by both' });
    const bobsPushes = browser.pushes.filter((p) => p.user === 'bob').flatMap((p) => p.ops);
    expect(bobsPushes.map((op) => op.pk)).toEqual(['bob-note']);
    expect((await serverLog(workspaceId)).map((c) => c.pk)).toEqual(['shared', 'bob-note']);
    await bob.close();

    // alice again: her row is back before any sync, and her write goes out with her token.
    const back = await browser.open('alice', workspaceId);
    expect(await back.db.table('threads').get('alice-note')).toMatchObject({ title: "alice's offline words" });
    expect(await back.db.table('threads').get('shared')).toMatchObject({ title: "alice's offline edit" });
    expect(await back.heldOps()).toEqual([]); // bob's one write reached the server: nothing of his waits
    expect((await back.sync()).error).toBeNull();
    const log = await serverLog(workspaceId);
    expect(log.map((c) => [c.pk, c.op_id])).toEqual([
      ['shared', expect.any(String)],
      ['bob-note', expect.any(String)],
      ['alice-note', aliceOp.op_id],
      ['shared', aliceEdit.op_id],
    ]);
    expect(browser.pushes.filter((p) => p.ops.some((op) => op.op_id === aliceOp.op_id)).map((p) => p.user)).toEqual(['alice']);
    expect((await back.db.table('threads').toArray()).map((t) => [t.id, t.title]).sort()).toEqual([
      ['alice-note', "alice's offline words"],
      ['bob-note', 'from bob'],
      ['shared', "alice's offline edit"],
    ]);
  });
});

describe("a tab still open for the previous user", () => {
  it("stops when bob opens the database in another tab: told over the tab channel, and at its next run without one; nothing of bob's goes out with alice's token", async () => {
    const { workspaceId } = await workspace('bob');
    for (const broadcast of [true, false]) {
      const browser = sharedBrowser();
      const alice = await browser.open('alice', workspaceId, { broadcast });
      await alice.db.table('threads').put({ id: `alice-${broadcast}`, title: 'hers' });
      expect((await alice.sync()).error).toBeNull();

      // bob opens the same database in another tab while alice's is still open.
      const bob = await browser.open('bob', workspaceId, { broadcast });
      await bob.db.table('threads').put({ id: `bob-${broadcast}`, title: 'his, unsynced' });
      if (broadcast) {
        await waitFor(async () => alice.pauseReason !== null);
        expect(alice.pauseReason).toMatchObject({ kind: 'refused', code: 'user_mismatch' });
      }
      const pushesBefore = browser.pushes.length;
      const run = await alice.sync();
      expect(run.error).toBe(broadcast ? 'paused' : 'user_mismatch');
      expect(alice.pauseReason).toMatchObject({ kind: 'refused', code: 'user_mismatch' });
      expect(browser.pushes.slice(pushesBefore)).toEqual([]);
      // alice's tab stays stopped after resume(): the database is bob's now.
      alice.resume();
      expect((await alice.sync()).error).toBe('user_mismatch');
      expect(browser.pushes.filter((p) => p.user === 'alice').flatMap((p) => p.ops).map((op) => op.pk)).toEqual([`alice-${broadcast}`]);
      // bob's engine goes on: his write reaches the server with his token.
      expect((await bob.sync()).error).toBeNull();
      expect(browser.pushes.filter((p) => p.ops.some((op) => op.pk === `bob-${broadcast}`)).map((p) => p.user)).toEqual(['bob']);
      await alice.close();
      await bob.close();
    }
  });
});

describe('sign-out', () => {
  it('refuses with the count of unsynced writes, and proceeds with hold (she gets them back) or discard (the database goes)', async () => {
    const { workspaceId } = await workspace();
    const browser = sharedBrowser();
    const alice = await browser.open('alice', workspaceId);
    await alice.sync();
    browser.online = false;
    await alice.db.table('threads').bulkPut([{ id: 'n1', title: 'one' }, { id: 'n2', title: 'two' }]);
    const refused = await alice.signOut({ timeoutMs: 200 }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(UnsyncedWritesError);
    expect(refused).toMatchObject({ count: 2 });
    // Still usable after a refusal.
    await alice.db.table('threads').put({ id: 'n3', title: 'three' });
    expect(await alice.pendingCount()).toBe(3);

    expect(await alice.signOut({ unsynced: 'hold', timeoutMs: 200 })).toBe('held_for_user');
    expect(await browser.databases()).toEqual([workspaceDatabaseName(workspaceId)]);
    browser.online = true;
    const again = await browser.open('alice', workspaceId);
    expect((await again.db.table('threads').toArray()).map((t) => t.id)).toEqual(['n1', 'n2', 'n3']);
    expect((await again.sync()).error).toBeNull();
    expect((await serverLog(workspaceId)).map((c) => c.pk)).toEqual(['n1', 'n2', 'n3']);

    browser.online = false;
    await again.db.table('threads').put({ id: 'n4', title: 'dropped' });
    expect(await again.signOut({ unsynced: 'discard', timeoutMs: 200 })).toBe('deleted');
    expect(await browser.databases()).toEqual([]);
    expect((await serverLog(workspaceId)).map((c) => c.pk)).toEqual(['n1', 'n2', 'n3']);
  });

  it('pushes what is pending first, then deletes the database', async () => {
    const { workspaceId } = await workspace();
    const browser = sharedBrowser();
    const alice = await browser.open('alice', workspaceId);
    await alice.db.table('threads').put({ id: 'last', title: 'written just before signing out' });
    expect(await alice.signOut()).toBe('deleted');
    expect(await browser.databases()).toEqual([]);
    expect((await serverLog(workspaceId)).map((c) => c.pk)).toEqual(['last']);
  });
});

describe('access changes', () => {
  it('an editor demoted to viewer while offline keeps receiving rows live; her refused writes fail with read_only and can be discarded', async () => {
    const { workspaceId, ownerToken } = await workspace('bob');
    const browser = sharedBrowser();
    const bob = await browser.open('bob', workspaceId);
    expect((await bob.sync()).error).toBeNull();
    browser.online = false;
    await bob.db.table('threads').put({ id: 'bob-offline', title: 'written as an editor' });
    await gateway.server().addMember(ownerToken, workspaceId, 'bob', 'viewer');
    browser.online = true;

    await bob.sync();
    expect(bob.access).toBe('read_only');
    expect(bob.isPaused).toBe(false);
    const failed = await bob.failedOps();
    expect(failed.map((op) => [op.pk, op.error?.code])).toEqual([['bob-offline', 'read_only']]);

    // Reads go on, live: another device of alice's writes, bob's subscription brings it.
    bob.start();
    const aliceDevice = await sharedBrowser().open('alice', workspaceId);
    await aliceDevice.db.table('threads').put({ id: 'alice-live', title: 'after the demotion' });
    await aliceDevice.sync();
    await waitFor(async () => (await bob.db.table('threads').get('alice-live')) !== undefined);
    // Nothing retries the refused push.
    const pushesBefore = browser.pushes.filter((p) => p.user === 'bob').length;
    await new Promise((r) => setTimeout(r, 300));
    expect(browser.pushes.filter((p) => p.user === 'bob').length).toBe(pushesBefore);

    await bob.discardFailedOp(failed[0]!.op_id);
    expect(await bob.failedOps()).toEqual([]);
    // Discarding never deletes a row: it stays, local-only, until written again.
    expect(await bob.db.table('threads').get('bob-offline')).toMatchObject({ title: 'written as an editor' });
  });

  it('a removed member: sync stops with refused and an event; forget refuses while her writes are unsynced, then empties the database', async () => {
    const { workspaceId, ownerToken } = await workspace('bob');
    const browser = sharedBrowser();
    const bob = await browser.open('bob', workspaceId);
    await bob.sync();
    const revoked: unknown[] = [];
    bob.on('sync.access:action:revoked', (event) => revoked.push(event));
    await gateway.server().removeMember(ownerToken, workspaceId, 'bob');
    await bob.db.table('threads').put({ id: 'too-late', title: 'after removal' });

    expect((await bob.sync()).error).toBe('forbidden');
    expect(bob.access).toBe('revoked');
    expect(bob.pauseReason).toMatchObject({ kind: 'refused', code: 'forbidden' });
    expect(revoked).toEqual([{ workspaceId, code: 'forbidden', message: expect.any(String) }]);
    expect((await serverLog(workspaceId)).map((c) => c.pk)).toEqual([]);

    const refused = await bob.forgetWorkspace().catch((error: unknown) => error);
    expect(refused).toMatchObject({ name: 'UnsyncedWritesError', count: 1 });
    expect(await bob.forgetWorkspace({ unsynced: 'discard' })).toBe('deleted');
    expect(await browser.databases()).toEqual([]);
  });
});

describe('one database per workspace', () => {
  it("attaching workspace 2's engine to workspace 1's database fails naming both; nothing is pushed to either", async () => {
    const { workspaceId: first } = await workspace();
    const { workspaceId: second } = await workspace();
    const browser = sharedBrowser();
    const engine = await browser.open('alice', first);
    await engine.db.table('threads').put({ id: 'synced', title: 'in workspace 1' });
    await engine.sync();
    browser.online = false;
    await engine.db.table('threads').put({ id: 'pending', title: 'not pushed yet' });
    await engine.close();
    browser.online = true;

    const db = new Dexie(workspaceDatabaseName(first), { indexedDB: browser.factory, IDBKeyRange });
    db.version(1).stores(APP_SCHEMA);
    const token = await gateway.server().token('alice');
    const provider = new GatewayProvider({ baseUrl: gateway.server().baseUrl, getToken: () => token });
    const error = await attachSync(db, { workspaceId: second, userId: 'alice', provider, syncedTables: SYNCED_TABLES, broadcast: false, locks: null }).catch(
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(WorkspaceMismatchError);
    expect(String((error as Error).message)).toContain(first);
    expect(String((error as Error).message)).toContain(second);
    expect((await serverLog(first)).map((c) => c.pk)).toEqual(['synced']);
    expect(await serverLog(second)).toEqual([]);
  });
});

describe('whose token', () => {
  it("an engine attached for alice holding bob's token pushes nothing and pauses with user_mismatch", async () => {
    const { workspaceId } = await workspace('bob');
    const browser = sharedBrowser();
    const bobToken = await gateway.server().token('bob');
    const provider = new GatewayProvider({ baseUrl: gateway.server().baseUrl, getToken: () => bobToken });
    const engine = await browser.open('alice', workspaceId, { provider });
    await engine.db.table('threads').put({ id: 'whose', title: 'written as alice' });
    expect((await engine.sync()).error).toBe('user_mismatch');
    expect(engine.pauseReason).toMatchObject({ kind: 'refused', code: 'user_mismatch' });
    expect(await serverLog(workspaceId)).toEqual([]);
  });
});
