/** The composables over real engines on fake-indexeddb, mounted with @vue/test-utils. */
import { describe, expect, it } from 'vitest';
import { ref } from 'vue';
import { SyncProviderError, type SyncEngine } from '@or3/sync-client';
import { useActiveWorkspace, useFailedOps, useLiveQuery, useSyncStatus } from '../src/index.js';
import { mountWith, testApp, until } from './support/workspaces.js';

interface Note {
  id: string;
  text: string;
  deleted?: boolean;
}

const liveNotes = (engine: SyncEngine) => engine.db.table<Note, string>('notes').filter((n) => !n.deleted).toArray();

describe('useLiveQuery', () => {
  it('follows writes, re-runs when a dep changes, and stops when the component unmounts', async () => {
    const app = testApp();
    await app.plugin.workspace.switchTo('w1');
    const prefix = ref('a');
    let runs = 0;
    const { wrapper, value: notes } = mountWith(app, () =>
      useLiveQuery(
        async (engine) => {
          runs += 1;
          return (await liveNotes(engine)).filter((n) => n.text.startsWith(prefix.value)).map((n) => n.text);
        },
        [prefix],
        { initial: [] },
      ),
    );
    const table = app.opened[0]!.db.table('notes');
    await table.put({ id: 'n1', text: 'apple' });
    await table.put({ id: 'n2', text: 'banana' });
    await until(() => notes.value?.length === 1, 'the write shows');
    expect(notes.value).toEqual(['apple']);

    prefix.value = 'b';
    await until(() => notes.value?.[0] === 'banana', 'the dep re-ran the query');

    wrapper.unmount();
    const runsAtUnmount = runs;
    await table.put({ id: 'n3', text: 'blueberry' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(runs).toBe(runsAtUnmount);
    expect(notes.value).toEqual(['banana']);
    await app.plugin.workspace.close();
  });
});

describe('switching workspaces', () => {
  it('closes the first engine, shows only the next one’s rows, and leaves no subscription behind', async () => {
    const app = testApp();
    await app.plugin.workspace.switchTo('w1');
    const queried: string[] = [];
    const { value } = mountWith(app, () => ({
      notes: useLiveQuery(
        async (engine) => {
          queried.push(engine.workspaceId);
          return (await liveNotes(engine)).map((n) => n.text);
        },
        [],
        { initial: [] },
      ),
      status: useSyncStatus(),
      workspace: useActiveWorkspace(),
    }));
    const first = app.opened[0]!;
    await first.db.table('notes').put({ id: 'n1', text: 'in w1' });
    await until(() => value.notes.value?.[0] === 'in w1', 'w1 rows show');
    await until(() => value.status.state === 'synced', 'w1 synced');
    const w1Provider = app.providers.get('w1')!;
    // The bindings' listener and the engine's (its status follows the channel). The engine opens
    // its subscription after the run that ended synced, so the status may say synced first.
    await until(() => w1Provider.realtimeListeners === 2, 'both realtime listeners on w1');
    expect(w1Provider.realtimeListeners).toBe(2);

    await value.workspace.switchTo('w2');
    const second = app.opened[1]!;
    expect(first.db.isOpen()).toBe(false);
    expect(value.notes.value).toEqual([]);
    expect(value.status.workspaceId).toBe('w2');
    expect(w1Provider.realtimeListeners).toBe(0);

    // Events of the closed engine reach nobody.
    queried.length = 0;
    first.events.emit('sync.stats:action', { ...(await second.stats()), workspaceId: 'w1', pending: 99 });
    expect(value.status.pending).not.toBe(99);
    await second.db.table('notes').put({ id: 'n2', text: 'in w2' });
    await until(() => value.notes.value?.[0] === 'in w2', 'w2 rows show');
    expect(queried.every((id) => id === 'w2')).toBe(true);
    await value.workspace.close();
    expect(second.db.isOpen()).toBe(false);
    expect(value.status.state).toBe('closed');
  });

  it('switches overtaken by a later one are skipped: only the last workspace opens', async () => {
    const app = testApp();
    const switches = [app.plugin.workspace.switchTo('w1'), app.plugin.workspace.switchTo('w2'), app.plugin.workspace.switchTo('w3')];
    await Promise.all(switches);
    expect(app.plugin.workspace.engine.value?.workspaceId).toBe('w3');
    expect(app.opened.map((engine) => engine.workspaceId)).toEqual(['w3']);
    await app.plugin.workspace.close();
  });
});

describe('useSyncStatus', () => {
  it('reports pending ops, then synced with the cursor, the leader tab and the realtime transport', async () => {
    const app = testApp();
    const { value: status } = mountWith(app, () => useSyncStatus());
    expect(status.state).toBe('closed');
    await app.plugin.workspace.switchTo('w1');
    const engine = app.opened[0]!;
    const provider = app.providers.get('w1')!;
    provider.onPush = (ops) => new Promise(() => void ops); // the push never answers: the write stays pending
    await engine.db.table('notes').put({ id: 'n1', text: 'hello' });
    await until(() => status.pending === 1, 'the pending op is counted');
    expect(status.leader).toBe(true);
    expect(status.state).toBe('connecting');
    await app.plugin.workspace.close();

    const second = testApp();
    const { value: synced } = mountWith(second, () => useSyncStatus());
    await second.plugin.workspace.switchTo('w2');
    const engine2 = second.opened[0]!;
    await engine2.db.table('notes').put({ id: 'n1', text: 'hello' });
    await until(() => synced.state === 'synced' && synced.pending === 0 && synced.lastPushAt !== null, 'the write is pushed');
    expect(synced.cursor).not.toBeNull();
    expect(synced.lastPushAt).not.toBeNull();
    second.providers.get('w2')!.report({ workspaceId: 'w2', transport: 'websocket', connected: true });
    expect(synced.realtime).toBe('websocket');
    engine2.pause();
    expect(synced.state).toBe('paused');
    expect(synced.realtime).toBeNull();
    engine2.resume();
    expect(synced.paused).toBe(false);
    await second.plugin.workspace.close();
  });

  it('a workspace the server refuses (not a member) is refused, never synced', async () => {
    const app = testApp((provider) => {
      provider.snapshot = () => Promise.reject(new SyncProviderError({ code: 'forbidden', message: 'not a member', status: 403 }));
    });
    const { value: status } = mountWith(app, () => useSyncStatus());
    await app.plugin.workspace.switchTo('w1');
    await until(() => status.state === 'refused', 'the status says refused');
    expect(status.paused).toBe(true);
    expect(status.lastError?.code).toBe('forbidden');
    await app.plugin.workspace.close();
  });

  it('a workspace the server does not know (404 unknown_workspace) is refused, never synced', async () => {
    const app = testApp((provider) => {
      provider.snapshot = () =>
        Promise.reject(new SyncProviderError({ code: 'unknown_workspace', message: 'no such workspace', status: 404 }));
    });
    const { value: status } = mountWith(app, () => useSyncStatus());
    await app.plugin.workspace.switchTo('w1');
    await until(() => status.state === 'refused', 'the status says refused');
    expect(status.paused).toBe(true);
    expect(status.lastError?.code).toBe('unknown_workspace');
    await app.plugin.workspace.close();
  });
});

describe('signing out', () => {
  it('signs the active engine out: pending writes pushed, the database deleted, no workspace active', async () => {
    const app = testApp();
    await app.plugin.workspace.switchTo('w1');
    await app.opened[0]!.db.table('notes').put({ id: 'n1', text: 'last words' });
    expect(await app.plugin.workspace.signOut()).toBe('deleted');
    expect(app.providers.get('w1')!.pushes.flat().map((op) => op.pk)).toEqual(['n1']);
    expect(app.plugin.workspace.engine.value).toBeNull();
    expect(app.plugin.workspace.workspaceId.value).toBeNull();
    expect(await app.factory.databases()).toEqual([]);
  });

  it('a refused sign-out (unsynced writes) rejects with the count and leaves the engine active and running', async () => {
    const app = testApp((provider) => {
      provider.push = () => Promise.reject(new SyncProviderError({ code: 'network_error', message: 'offline', status: 0 }));
    });
    await app.plugin.workspace.switchTo('w1');
    const engine = app.opened[0]!;
    await engine.db.table('notes').put({ id: 'n1', text: 'not pushed' });
    await expect(app.plugin.workspace.signOut({ timeoutMs: 100 })).rejects.toMatchObject({ name: 'UnsyncedWritesError', count: 1 });
    expect(app.plugin.workspace.engine.value).toBe(engine);
    expect(app.plugin.workspace.workspaceId.value).toBe('w1');
    await until(() => engine.isLeader, 'the engine runs again');
    expect(await app.plugin.workspace.signOut({ unsynced: 'discard', timeoutMs: 100 })).toBe('deleted');
  });
});

describe('useSyncStatus of a viewer', () => {
  it('a workspace whose server refuses the writes but not the reads is read_only, with the refused writes failed', async () => {
    const app = testApp((provider) => {
      provider.push = () => Promise.reject(new SyncProviderError({ code: 'forbidden', message: 'viewers may not push', status: 403 }));
    });
    const { value: status } = mountWith(app, () => useSyncStatus());
    await app.plugin.workspace.switchTo('w1');
    await app.opened[0]!.db.table('notes').put({ id: 'n1', text: 'refused' });
    await until(() => status.state === 'read_only', 'the status says read_only');
    await until(() => status.access === 'read_only', 'the access says read_only');
    expect(status.paused).toBe(false);
    await until(() => status.failed === 1, 'the refused write is failed');
    await app.plugin.workspace.close();
  });
});

describe('useFailedOps', () => {
  it('lists a write the server rejected; discard drops the op and keeps the row, restoreServerCopy removes a row the server never had', async () => {
    const app = testApp();
    await app.plugin.workspace.switchTo('w1');
    const provider = app.providers.get('w1')!;
    provider.onPush = (ops) => ({
      results: ops.map((op) => ({ op_id: op.op_id, status: 'rejected' as const, error: { code: 'invalid_op', message: 'no' } })),
      server_version: 0,
    });
    const { value: failed } = mountWith(app, () => useFailedOps());
    await app.opened[0]!.db.table('notes').put({ id: 'n1', text: 'bad' });
    await until(() => failed.ops.value?.length === 1, 'the failed op is listed');
    const { value: status } = mountWith(app, () => useSyncStatus());
    await until(() => status.state === 'attention' && status.lastError?.code === 'invalid_op', 'the status says a write needs attention');
    const notes = app.opened[0]!.db.table('notes');
    await failed.discard(failed.ops.value![0]!.op_id);
    await until(() => failed.ops.value?.length === 0, 'the discarded op is gone');
    expect(await notes.get('n1')).toMatchObject({ text: 'bad' });
    await notes.put({ id: 'n1', text: 'bad again' });
    await until(() => failed.ops.value?.length === 1, 'the new write failed too');
    await failed.restoreServerCopy(failed.ops.value![0]!.op_id);
    expect(await notes.get('n1')).toBeUndefined();
    await app.plugin.workspace.close();
  });
});
