/**
 * A project-scoped engine that pulls a scope change must rescan, even when
 * the rescan fails or the tab reloads first (found by packages/faults: a
 * device syncing one project kept threads that had left it).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SyncEngine } from '../src/engine.js';
import { SyncProviderError, type SyncScope } from '../src/provider.js';
import { PAGE_ATTEMPTS } from '../src/rescan.js';
import type { Change, SnapshotPage } from '@or3/sync-protocol';
import { makeDevice } from './support/devices.js';
import { ScriptedProvider } from './support/scripted-provider.js';

const opened: SyncEngine[] = [];
afterEach(async () => {
  for (const engine of opened.splice(0)) await engine.close();
});

/** Its next `failSnapshots` snapshot requests fail as with no network. */
class FlakySnapshotProvider extends ScriptedProvider {
  failSnapshots = 0;

  override async snapshot(scope: SyncScope, pageToken: string | null): Promise<SnapshotPage> {
    if (this.failSnapshots > 0) {
      this.failSnapshots -= 1;
      throw new SyncProviderError({ code: 'network_error', message: 'offline', status: 0 });
    }
    return super.snapshot(scope, pageToken);
  }
}

function thread(version: number, projectId: string, scopeChange: boolean): Change {
  return {
    server_version: version,
    table_name: 'threads',
    pk: 't1',
    operation: 'put',
    payload: { id: 't1', title: `v${version}`, project_id: projectId },
    clock: version,
    hlc: `1732540000000-${String(version).padStart(6, '0')}-aaaaaaaaaaaaaaaa`,
    op_id: crypto.randomUUID(),
    device_id: 'aaaaaaaaaaaaaaaa',
    scope_change: scopeChange,
  };
}

describe('scope change', () => {
  it('scope_change_rescan_is_not_lost_when_it_fails_or_the_tab_reloads', async () => {
    const provider = new FlakySnapshotProvider();
    const device = makeDevice('ws-scope-lost', provider, { projectId: 'p1' });
    let engine = await device.open();
    opened.push(engine);
    expect(await engine.sync()).toMatchObject({ error: null }); // fresh: an empty snapshot
    provider.log = [thread(1, 'p1', false)];
    expect(await engine.sync()).toMatchObject({ error: null });
    expect(await engine.db.table('threads').get('t1')).toMatchObject({ project_id: 'p1' });

    // t1 moves to p2: the pull applies the change, then the rescan it calls for fails.
    provider.log.push(thread(2, 'p2', true));
    provider.snapshotItems = [];
    provider.snapshotVersion = 2;
    provider.failSnapshots = PAGE_ATTEMPTS; // every try of the page: the run fails
    expect((await engine.sync()).error).toBe('network_error');

    // The tab reloads before the next run; the rescan is still owed.
    await engine.close();
    opened.splice(opened.indexOf(engine), 1);
    engine = await device.open();
    opened.push(engine);
    const reasons: string[] = [];
    engine.on('sync.rescan:action', (e) => reasons.push(`${e.phase}:${e.reason}`));
    expect(await engine.sync()).toMatchObject({ error: null });
    expect(reasons).toEqual(['started:scope_change', 'finished:scope_change']);
    expect(await engine.db.table('threads').get('t1')).toBeUndefined();
    expect((await engine.stats()).cursor).toBe(2);

    // Owed once: the next run does not rescan again.
    reasons.length = 0;
    expect(await engine.sync()).toMatchObject({ error: null });
    expect(reasons).toEqual([]);
  });

  it('a_scoped_database_holds_only_its_project_once_pending_writes_are_pushed', async () => {
    // Found by packages/faults: a rescan keeps pending writes on records the project snapshot
    // lacks; once pushed, they stayed although the server had them outside the project.
    const provider = new FlakySnapshotProvider();
    const engine = await makeDevice('ws-scope-leftover', provider, { projectId: 'p1' }).open();
    opened.push(engine);
    expect(await engine.sync()).toMatchObject({ error: null });
    await engine.db.table('threads').put({ id: 't2', title: 'moved away', project_id: 'p2' });
    provider.snapshotItems = [];
    const reasons: string[] = [];
    engine.on('sync.rescan:action', (e) => e.phase === 'started' && reasons.push(e.reason));
    // The rescan keeps the pending write; the push then takes it to the server.
    expect(await engine.rescan()).toMatchObject({ error: null, pushed: 1 });
    if (await engine.db.table('threads').get('t2')) expect(await engine.sync()).toMatchObject({ error: null });
    expect(provider.pushes.flat().map((op) => op.pk)).toEqual(['t2']);
    expect(await engine.db.table('threads').get('t2')).toBeUndefined();
    expect(reasons).toEqual(['on_demand', 'scope_change']);
  });

  it('a_thread_this_device_writes_outside_its_project_leaves_it_once_pushed', async () => {
    // Found by packages/faults (seed 38136): a device syncing p1 created a thread and moved it
    // out of p1 before its first push (the outbox merged the two writes). The server never had
    // the thread in p1, so p1's feed never said it left, and the device kept it for good.
    const provider = new ScriptedProvider();
    const engine = await makeDevice('ws-scope-own-write', provider, { projectId: 'p1' }).open();
    opened.push(engine);
    expect(await engine.sync()).toMatchObject({ error: null });
    const reasons: string[] = [];
    engine.on('sync.rescan:action', (e) => e.phase === 'started' && reasons.push(e.reason));
    await engine.db.table('threads').put({ id: 'mine', title: 'in p1', project_id: 'p1' });
    expect(await engine.sync()).toMatchObject({ error: null });
    expect(reasons).toEqual([]); // a write inside the project owes nothing
    provider.snapshotItems = [
      { table_name: 'threads', pk: 'mine', payload: { id: 'mine', title: 'in p1', project_id: 'p1' }, deleted: false, clock: 1, hlc: '1732540000000-000000-aaaaaaaaaaaaaaaa', op_id: crypto.randomUUID(), server_version: 1 },
    ];
    await engine.db.table('threads').put({ id: 'away', title: 'for p2', project_id: 'p2' });
    await engine.db.table('threads').put({ id: 'loose', title: 'no project', project_id: null });
    expect(await engine.sync()).toMatchObject({ error: null });
    expect(provider.pushes.flat().map((op) => op.pk)).toEqual(['mine', 'away', 'loose']);
    // Pushed (the server holds them), then gone from this project's database; its own thread stays.
    expect(reasons).toEqual(['scope_change']);
    expect(await engine.db.table('threads').get('away')).toBeUndefined();
    expect(await engine.db.table('threads').get('loose')).toBeUndefined();
    expect(await engine.db.table('threads').get('mine')).toMatchObject({ project_id: 'p1' });
  });
});
