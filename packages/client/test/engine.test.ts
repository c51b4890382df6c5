/** Engine-level rules: rescans, multi-tab leadership, and the gateway provider's HTTP edges. */
import { IDBIndex as FakeIDBIndex, IDBObjectStore as FakeIDBObjectStore } from 'fake-indexeddb';
import { liveQuery } from 'dexie';
import { afterEach, describe, expect, it } from 'vitest';
import type { SyncEngine } from '../src/engine.js';
import type { RescanEvent } from '../src/events.js';
import { GatewayProvider } from '../src/gateway/gateway-provider.js';
import type { LockManagerLike } from '../src/leader.js';
import { SyncProviderError, type ChangesBatch } from '../src/provider.js';
import type { PendingOpRow } from '../src/outbox/index.js';
import { PAGE_ATTEMPTS } from '../src/rescan.js';
import type { Change, SnapshotItem } from '@or3/sync-protocol';
import { makeDevice } from './support/devices.js';
import { ScriptedProvider } from './support/scripted-provider.js';

const opened: SyncEngine[] = [];
afterEach(async () => {
  for (const engine of opened.splice(0)) await engine.close();
});

function item(table: string, pk: string, clock: number, extra: Partial<SnapshotItem> = {}): SnapshotItem {
  return {
    table_name: table,
    pk,
    payload: { id: pk, title: `server ${pk}` },
    deleted: false,
    clock,
    hlc: `1732540000000-${String(clock).padStart(6, '0')}-aaaaaaaaaaaaaaaa`,
    op_id: crypto.randomUUID(),
    server_version: clock,
    ...extra,
  };
}

function change(version: number, pk: string, extra: Partial<Change> = {}): Change {
  return {
    server_version: version,
    table_name: 'threads',
    pk,
    operation: 'put',
    payload: { id: pk, title: `v${version}` },
    clock: version,
    hlc: `1732540000000-${String(version).padStart(6, '0')}-aaaaaaaaaaaaaaaa`,
    op_id: crypto.randomUUID(),
    device_id: 'aaaaaaaaaaaaaaaa',
    scope_change: false,
    ...extra,
  };
}

describe('rescan', () => {
  it('a fresh device writes the snapshot straight in and pulls from snapshot_version', async () => {
    const provider = new ScriptedProvider();
    provider.snapshotItems = [item('threads', 'a', 1), item('threads', 'gone', 2, { deleted: true }), item('kv', 'k', 3, { deleted: true, payload: null })];
    provider.log = [change(1, 'a'), change(2, 'gone'), change(3, 'x')];
    const engine = await makeDevice('ws-fresh', provider).open();
    opened.push(engine);
    const events: RescanEvent[] = [];
    engine.on('sync.rescan:action', (e) => events.push(e));
    const run = await engine.sync();
    expect(run.error).toBeNull();
    expect(events.map((e) => [e.phase, e.reason])).toEqual([
      ['started', 'fresh_device'],
      ['finished', 'fresh_device'],
    ]);
    expect(provider.pulls).toEqual([3]);
    expect(await engine.db.table('threads').get('a')).toMatchObject({ title: 'server a', clock: 1 });
    expect(await engine.db.table('threads').get('gone')).toMatchObject({ deleted: true });
    expect(await engine.db.table('_or3sync_tombstones').count()).toBe(2);
    expect(await engine.db.table('_or3sync_outbox').count()).toBe(0);
  });

  it('cursor_expired rescans, keeps pending writes that win, and drops rows the server no longer has', async () => {
    const provider = new ScriptedProvider();
    const engine = await makeDevice('ws-expired', provider).open();
    opened.push(engine);
    await engine.sync(); // fresh device, empty snapshot
    provider.log = [change(1, 'old')];
    await engine.sync();
    expect(await engine.db.table('threads').get('old')).toBeDefined();

    provider.onPush = () => {
      throw new Error('held back');
    };
    await engine.db.table('threads').put({ id: 'mine', title: 'pending, loses' });
    await engine.db.table('threads').put({ id: 'mine2', title: 'pending, wins' });
    provider.snapshotItems = [item('threads', 'kept', 60), item('threads', 'mine', 61)];
    provider.snapshotVersion = 61;
    const pulls: number[] = [];
    let expired = true;
    provider.pull = async (_scope, cursor) => {
      pulls.push(cursor);
      if (expired) {
        expired = false;
        throw new SyncProviderError({ code: 'cursor_expired', message: 'gone', status: 410, oldestRetainedVersion: 50 });
      }
      return { changes: [], cursor, has_more: false };
    };
    const reasons: string[] = [];
    const conflicts: { pk: string; winner: string }[] = [];
    engine.on('sync.rescan:action', (e) => reasons.push(`${e.phase}:${e.reason}`));
    engine.on('sync.conflict:action:detected', (c) => conflicts.push(c));
    await engine.sync();

    expect(reasons).toEqual(['started:cursor_expired', 'finished:cursor_expired']);
    expect(pulls).toEqual([1, 61]);
    expect(await engine.db.table('threads').get('kept')).toMatchObject({ clock: 60 });
    expect(await engine.db.table('threads').get('old')).toBeUndefined();
    expect(await engine.db.table('threads').get('mine')).toMatchObject({ clock: 61, title: 'server mine' });
    expect(await engine.db.table('threads').get('mine2')).toMatchObject({ clock: 1, title: 'pending, wins' });
    expect(conflicts).toEqual([expect.objectContaining({ pk: 'mine', winner: 'remote' })]);
    expect(await engine.pendingCount()).toBe(2);
    expect(await engine.db.table('_or3sync_state').get('cursor:*')).toMatchObject({ value: 61 });
  });

  it('a staged rescan over several pages leaves the local state equal to the snapshot, touching only what changed', async () => {
    const provider = new ScriptedProvider();
    provider.snapshotPageSize = 2;
    provider.snapshotItems = [
      item('threads', 'a', 1),
      item('threads', 'b', 2),
      item('threads', 'c', 3),
      item('threads', 'd', 4, { deleted: true }),
      item('threads', 'e', 5, { deleted: true }),
    ];
    provider.snapshotVersion = 5;
    const engine = await makeDevice('ws-staged-pages', provider).open();
    opened.push(engine);
    expect((await engine.sync()).error).toBeNull();
    const tombstoneOf = (pk: string) => engine.db.table('_or3sync_tombstones').get(['threads', pk]);
    const keptTombstone = await tombstoneOf('d');
    await engine.db.table('_or3sync_tombstones').update(['threads', 'd'], { recorded_at: 1 });

    // The server changed b, dropped c and e (GC'd), kept a and d, and has a new f.
    provider.snapshotItems = [
      item('threads', 'a', 1, { op_id: provider.snapshotItems[0]!.op_id, hlc: provider.snapshotItems[0]!.hlc }),
      item('threads', 'b', 6, { payload: { id: 'b', title: 'changed' } }),
      { ...provider.snapshotItems[3]! },
      item('threads', 'f', 7),
    ];
    provider.snapshotVersion = 7;
    const outcome = await engine.rescan();
    expect(outcome.error).toBeNull();

    const rows = await engine.db.table('threads').orderBy('id').toArray();
    expect(rows.map((r) => [r.id, r.clock, r.deleted])).toEqual([
      ['a', 1, false],
      ['b', 6, false],
      ['d', 4, true],
      ['f', 7, false],
    ]);
    expect(rows[1]).toMatchObject({ title: 'changed' });
    // The unchanged tombstone stamp is the stored one (its recorded_at drives retention); e's is gone.
    expect(await tombstoneOf('d')).toMatchObject({ op_id: keptTombstone!.op_id, recorded_at: 1 });
    expect(await tombstoneOf('e')).toBeUndefined();
    expect(await engine.db.table('_or3sync_tombstones').count()).toBe(1);
    expect(await engine.db.table('_or3sync_staging').count()).toBe(0);
    expect(await engine.db.table('_or3sync_state').get('cursor:*')).toMatchObject({ value: 7 });
  });

  it('a staged rescan replaces a row stored under a number key with the snapshot row of the same id', async () => {
    const provider = new ScriptedProvider();
    const engine = await makeDevice('ws-number-key', provider).open();
    opened.push(engine);
    await engine.sync(); // fresh device, empty snapshot
    await engine.db.table('kv').put({ id: 42, value: 'local' });
    expect((await engine.sync()).pushed).toBe(1);
    provider.snapshotItems = [item('kv', '42', 5, { payload: { id: '42', value: 'server' } })];
    provider.snapshotVersion = 5;
    expect((await engine.rescan()).error).toBeNull();
    expect(await engine.db.table('kv').toArray()).toEqual([expect.objectContaining({ id: '42', value: 'server', clock: 5 })]);
  });

  it('a snapshot page that keeps failing fails the rescan; the next run bootstraps from the start', async () => {
    const provider = new ScriptedProvider();
    provider.snapshotPageSize = 1;
    provider.snapshotItems = [item('threads', 'a', 1), item('threads', 'b', 2), item('threads', 'c', 3)];
    provider.snapshotVersion = 3;
    const snapshot = provider.snapshot.bind(provider);
    const tokens: (string | null)[] = [];
    // Every try of page 2 fails (a page failing fewer times is retried in place: rescan-pages.test.ts).
    let failures = PAGE_ATTEMPTS;
    provider.snapshot = async (scope, token) => {
      tokens.push(token);
      if (token === '2' && failures-- > 0) throw new SyncProviderError({ code: 'network_error', message: 'cut', status: 0 });
      return snapshot(scope, token);
    };
    const engine = await makeDevice('ws-page-fails', provider).open();
    opened.push(engine);
    const failed = await engine.sync();
    expect(failed.error).toBe('network_error');
    expect(await engine.db.table('_or3sync_state').get('cursor:*')).toBeUndefined();

    expect((await engine.sync()).error).toBeNull();
    expect(tokens).toEqual([null, '1', ...Array<string>(PAGE_ATTEMPTS).fill('2'), null, '1', '2']);
    expect((await engine.db.table('threads').toArray()).map((r) => r.id)).toEqual(['a', 'b', 'c']);
    expect(await engine.db.table('_or3sync_state').get('cursor:*')).toMatchObject({ value: 3 });
  });

  it('a scope change in a project-scoped pull triggers a rescan', async () => {
    const provider = new ScriptedProvider();
    const engine = await makeDevice('ws-scope', provider, { projectId: 'p1' }).open();
    opened.push(engine);
    await engine.sync();
    provider.log = [change(1, 't-moved', { scope_change: true })];
    provider.snapshotItems = [item('threads', 't-moved', 1)];
    const reasons: string[] = [];
    engine.on('sync.rescan:action', (e) => reasons.push(`${e.phase}:${e.reason}`));
    await engine.sync();
    expect(reasons).toEqual(['started:scope_change', 'finished:scope_change']);
    expect(await engine.db.table('_or3sync_state').get('cursor:p1')).toMatchObject({ value: 1 });
  });
});

/** An in-memory Web Locks manager: one holder per name, others wait in order. */
class MemoryLocks implements LockManagerLike {
  private tails = new Map<string, Promise<unknown>>();
  request(name: string, options: { mode: 'exclusive'; signal?: AbortSignal }, callback: () => Promise<void>) {
    const previous = this.tails.get(name) ?? Promise.resolve();
    const run = previous.then(() => {
      if (options.signal?.aborted) throw new DOMException('aborted', 'AbortError');
      return callback();
    });
    this.tails.set(name, run.catch(() => {}));
    return run;
  }
}

describe('apply', () => {
  it('pulled changes meet the local state of their records, whether their keys are dense or scattered', async () => {
    const provider = new ScriptedProvider();
    const engine = await makeDevice('ws-apply-reads', provider).open();
    opened.push(engine);
    await engine.sync(); // fresh device, empty snapshot
    const pk = (i: number) => `p${String(i).padStart(2, '0')}`;
    provider.log = Array.from({ length: 40 }, (_, i) => change(i + 1, pk(i)));
    await engine.sync();
    expect(await engine.db.table('threads').count()).toBe(40);

    provider.onPush = () => {
      throw new Error('held back');
    };
    // Pending local edits (one clock above the stored version) and one local delete.
    for (const i of [5, 10, 11, 12, 39]) await engine.db.table('threads').update(pk(i), { title: 'local' });
    await engine.db.table('threads').delete(pk(13));
    const conflicts: { pk: string; winner: string }[] = [];
    engine.on('sync.conflict:action:detected', (c) => conflicts.push(c));
    // Same clocks as the local writes with older stamps: every local write wins.
    const stale = (version: number, i: number) => change(version, pk(i), { clock: i + 2 });

    // Dense: four records in a range that holds four (read as one key range).
    provider.log.push(stale(41, 10), stale(42, 11), stale(43, 12), stale(44, 13));
    await engine.sync();
    // Scattered: the range p05..p39 holds 35 records (read key by key); p20 has no local write and applies.
    provider.log.push(stale(45, 5), change(46, pk(20), { clock: 30 }), stale(47, 39));
    await engine.sync();

    for (const i of [5, 10, 11, 12, 39]) expect(await engine.db.table('threads').get(pk(i))).toMatchObject({ title: 'local', clock: i + 2 });
    expect(await engine.db.table('threads').get(pk(13))).toMatchObject({ deleted: true, clock: 15 });
    expect(await engine.db.table('threads').get(pk(20))).toMatchObject({ title: 'v46', clock: 30 });
    expect(conflicts.map((c) => [c.pk, c.winner]).sort()).toEqual(
      [5, 10, 11, 12, 13, 39].map((i) => [pk(i), 'local']),
    );
  });
});

describe('subscription', () => {
  it('applies streamed changes with the cursor, and tells the provider the cursor it has applied', async () => {
    const { engine, subscription } = await subscribedDevice('ws-sub');
    expect(subscription!.cursor).toBe(0);
    await subscription!.onChanges({ changes: [change(1, 't1'), change(2, 't2')], from: 0, to: 2 });
    expect(await engine.db.table('threads').get('t2')).toMatchObject({ title: 'v2', clock: 2 });
    expect(await subscription!.options.appliedCursor!()).toBe(2);
    expect(await engine.pendingCount()).toBe(0);
  });

  it('a streamed change meets a pending local write: the later stamp wins, both conflicts are reported, the cursor moves', async () => {
    const provider = new ScriptedProvider();
    const engine = await makeDevice('ws-sub-conflict', provider).open();
    opened.push(engine);
    engine.start();
    await waitFor(async () => provider.subscriptions.length === 1);
    // Offline for pushes: the local writes stay in the outbox.
    provider.onPush = () => {
      throw new SyncProviderError({ code: 'network_error', message: 'offline', status: 0 });
    };
    await engine.db.table('threads').put({ id: 'older-here', title: 'local, loses' });
    await engine.db.table('threads').put({ id: 'newer-here', title: 'local, first' });
    await engine.db.table('threads').put({ id: 'newer-here', title: 'local, wins' });
    const conflicts: { pk: string; winner: string }[] = [];
    engine.on('sync.conflict:action:detected', (c) => conflicts.push({ pk: c.pk, winner: c.winner }));
    const [subscription] = provider.subscriptions;
    // The server's version of `older-here` has a higher clock; of `newer-here`, a lower one.
    await subscription!.onChanges({ changes: [change(7, 'older-here', { clock: 5 }), change(8, 'newer-here', { clock: 1 })], from: 0, to: 8 });
    expect(await engine.db.table('threads').get('older-here')).toMatchObject({ title: 'v7', clock: 5 });
    expect(await engine.db.table('threads').get('newer-here')).toMatchObject({ title: 'local, wins', clock: 2 });
    expect(conflicts.sort((a, b) => a.pk.localeCompare(b.pk))).toEqual([
      { pk: 'newer-here', winner: 'local' },
      { pk: 'older-here', winner: 'remote' },
    ]);
    expect(await subscription!.options.appliedCursor!()).toBe(8);
    // Nothing local is lost: the winning local write still waits to be pushed.
    const queued = (await engine.db.table<PendingOpRow>('_or3sync_outbox').toArray()).filter((op) => op.pk === 'newer-here');
    expect(queued.at(-1)).toMatchObject({ status: 'pending', payload: expect.objectContaining({ title: 'local, wins' }) });
  });

  it('a streamed frame past the stored cursor (a gap) applies nothing and moves no cursor; the pull that follows fills it', async () => {
    const { provider, engine, subscription } = await subscribedDevice('ws-sub-gap');
    provider.log = [change(1, 'g1'), change(2, 'g2'), change(3, 'g3')];
    await subscription!.onChanges({ changes: [change(3, 'g3')], from: 2, to: 3 });
    // Read at once, together, before the pull the gap asked for can run.
    const [row, cursor] = await Promise.all([engine.db.table('threads').get('g3'), subscription!.options.appliedCursor!()]);
    expect(row).toBeUndefined();
    expect(cursor).toBe(0);
    await waitFor(async () => (await subscription!.options.appliedCursor!()) === 3);
    expect(await engine.db.table('threads').get('g1')).toMatchObject({ title: 'v1' });
    expect(await engine.db.table('threads').get('g3')).toMatchObject({ title: 'v3' });
  });

  it('a realtime frame is applied in one round of requests: its writes go out before its reads answer', async () => {
    const { engine, subscription } = await subscribedDevice('ws-sub-ahead');
    await subscription!.onChanges({ changes: [change(1, 'first')], from: 0, to: 1 });
    const log = watchRequests();
    try {
      await subscription!.onChanges({ changes: [change(2, 'ahead')], from: 1, to: 2 });
    } finally {
      log.stop();
    }
    const firstAnswer = log.events.findIndex((e) => e.startsWith('answer'));
    const writes = log.events.flatMap((e, i) => (e.startsWith('put') ? [i] : []));
    // The row, the cursor and the clock state, all asked before any read answered.
    expect(writes.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...writes)).toBeLessThan(firstAnswer);
    expect(await engine.db.table('threads').get('ahead')).toMatchObject({ title: 'v2', clock: 2 });
    expect(await subscription!.options.appliedCursor!()).toBe(2);
  });

  it("the echo of this device's own push, past which its settle moved the cursor, is applied without a write (no ahead attempt rolled back)", async () => {
    const { provider, engine, subscription } = await subscribedDevice('ws-sub-echo');
    await engine.db.table('threads').put({ id: 'mine', title: 'written here' });
    await waitFor(async () => (await subscription.options.appliedCursor!()) === 1);
    const [sent] = provider.pushes[0]!;
    const echo = change(1, 'mine', { hlc: sent!.hlc, clock: sent!.clock, op_id: sent!.op_id, payload: sent!.payload, device_id: sent!.device_id });
    const log = watchRequests();
    try {
      await subscription.onChanges({ changes: [echo], from: 0, to: 1 });
    } finally {
      log.stop();
    }
    expect(log.events.filter((e) => ['put', 'add', 'delete'].includes(e))).toEqual([]);
    expect(await engine.db.table('threads').get('mine')).toMatchObject({ title: 'written here' });
    expect(await subscription.options.appliedCursor!()).toBe(1);
  });

  it('a streamed frame older than the row it meets leaves the row as it was: no live query sees the older version', async () => {
    const { engine, subscription } = await subscribedDevice('ws-sub-stale');
    await subscription!.onChanges({ changes: [change(1, 'kept', { clock: 9, payload: { id: 'kept', title: 'newer' } })], from: 0, to: 1 });
    const seen: string[] = [];
    const watching = liveQuery(() => engine.db.table('threads').get('kept')).subscribe({ next: (row) => seen.push(row?.title) });
    await waitFor(async () => seen.length > 0);
    await subscription!.onChanges({ changes: [change(2, 'kept', { clock: 3, payload: { id: 'kept', title: 'older' } })], from: 1, to: 2 });
    await engine.db.table('threads').get('kept');
    watching.unsubscribe();
    expect(await engine.db.table('threads').get('kept')).toMatchObject({ title: 'newer', clock: 9 });
    expect(seen).not.toContain('older');
    expect(await subscription!.options.appliedCursor!()).toBe(2);
  });

  it('a streamed put meets the tombstone another tab wrote, though this tab saw no tombstone of its table', async () => {
    const { engine, subscription } = await subscribedDevice('ws-sub-tomb');
    await subscription!.onChanges({ changes: [change(1, 'alive')], from: 0, to: 1 });
    // Another tab deleted `dead` (clock 9): its tombstone, and the clock state naming the table.
    const state = engine.db.table('_or3sync_state');
    const clock = (await state.get('hlc')) as { key: string; value: Record<string, unknown> };
    await engine.db.transaction('rw', ['_or3sync_state', '_or3sync_tombstones'], async () => {
      await state.put({ key: 'hlc', value: { ...clock.value, tombstone_tables: ['threads'] } });
      await engine.db.table('_or3sync_tombstones').put({
        table_name: 'threads', pk: 'dead', clock: 9, hlc: '1732540000001-000000-bbbbbbbbbbbbbbbb', op_id: 'other-tab-delete',
        deleted_at: 1, server_version: null, recorded_at: 1,
      });
    });
    await subscription!.onChanges({ changes: [change(2, 'dead', { clock: 4 })], from: 1, to: 2 });
    expect(await engine.db.table('threads').get('dead')).toBeUndefined();
    expect(await subscription!.options.appliedCursor!()).toBe(2);
  });

  it('a streamed frame that overlaps the stored cursor applies only the changes past it', async () => {
    const { engine, subscription } = await subscribedDevice('ws-sub-overlap');
    await subscription!.onChanges({ changes: [change(1, 'o1'), change(2, 'o2', { payload: { id: 'o2', title: 'applied once' } })], from: 0, to: 2 });
    // The user renames o2 after it arrived; a frame repeating version 2 must not undo that.
    await engine.db.table('threads').update('o2', { title: 'renamed here' });
    await subscription!.onChanges({ changes: [change(2, 'o2', { clock: 7, payload: { id: 'o2', title: 'repeated' } }), change(3, 'o3')], from: 1, to: 3 });
    expect(await engine.db.table('threads').get('o2')).toMatchObject({ title: 'renamed here' });
    expect(await engine.db.table('threads').get('o3')).toMatchObject({ title: 'v3' });
    expect(await subscription!.options.appliedCursor!()).toBe(3);
  });

  it('a subscription silent past safetyPullMs gets a safety pull; changes it missed reopen it', async () => {
    const provider = new ScriptedProvider();
    const engine = await makeDevice('ws-sub-silent', provider).open({ outboxPollMs: 20, safetyPullMs: 150 });
    opened.push(engine);
    engine.start();
    await waitFor(async () => provider.subscriptions.length === 1);
    const pullsAtStart = provider.pulls.length;
    // The connection is dead without knowing it: another device's change never arrives on it.
    provider.log = [change(1, 't-missed')];
    await waitFor(async () => (await engine.db.table('threads').get('t-missed')) !== undefined);
    expect(provider.pulls.length).toBeGreaterThan(pullsAtStart);
    // The silent subscription was stopped and a new one opened from the applied cursor.
    await waitFor(async () => provider.subscriptions.length === 2);
    expect(provider.subscriptions[0]!.stopped).toBe(true);
    expect(provider.subscriptions[1]!.cursor).toBe(1);
    // A safety pull that finds nothing keeps the subscription.
    const pulls = provider.pulls.length;
    await waitFor(async () => provider.pulls.length > pulls);
    expect(provider.subscriptions).toHaveLength(2);
    expect(provider.subscriptions[1]!.stopped).toBe(false);
  });

  it('a safety pull that finds missed changes reopens the subscription even when its push fails', async () => {
    const provider = new ScriptedProvider();
    // Every outbox poll finds the leader quiet, so the run it starts is a safety pull.
    const device = makeDevice('ws-sub-silent-push-fails', provider, { outboxPollMs: 200, safetyPullMs: 100 });
    const engine = await device.open();
    opened.push(engine);
    engine.start();
    await waitFor(async () => provider.subscriptions.length === 1);
    provider.onPush = () => {
      throw new Error('held back');
    };
    provider.log = [change(1, 't-missed')];
    // Another tab (no broadcast) writes: the leader learns of it at its next poll, which also pulls.
    const otherTab = await device.open();
    opened.push(otherTab);
    await otherTab.db.table('threads').put({ id: 'mine', title: 'pending' });
    await waitFor(async () => (await engine.db.table('threads').get('t-missed')) !== undefined);
    await waitFor(async () => provider.subscriptions.length === 2);
    expect(provider.subscriptions[0]!.stopped).toBe(true);
    expect(provider.subscriptions[1]!.stopped).toBe(false);
    expect(provider.pushes.length).toBeGreaterThan(0);
    expect(await engine.pendingCount()).toBe(1);
  });

  it('cursor_expired from the subscription rescans and subscribes again from snapshot_version', async () => {
    const provider = new ScriptedProvider();
    const engine = await makeDevice('ws-sub-expired', provider).open();
    opened.push(engine);
    const rescans: RescanEvent[] = [];
    engine.on('sync.rescan:action', (e) => rescans.push(e));
    engine.start();
    await waitFor(async () => provider.subscriptions.length === 1);
    provider.snapshotItems = [item('threads', 'fresh', 1)];
    provider.snapshotVersion = 7;
    provider.subscriptions[0]!.onError(
      new SyncProviderError({ code: 'cursor_expired', message: 'old', status: 410, oldestRetainedVersion: 5 }),
    );
    await waitFor(async () => provider.subscriptions.length === 2);
    expect(rescans.filter((e) => e.phase === 'started').map((e) => e.reason)).toEqual(['fresh_device', 'cursor_expired']);
    expect(provider.subscriptions[1]!.cursor).toBe(7);
    expect(await engine.db.table('threads').get('fresh')).toBeDefined();
  });
});

describe('close', () => {
  it('close() returns even while a push never answers, and the write stays in the outbox', async () => {
    const provider = new ScriptedProvider();
    const device = makeDevice('ws-close-hung', provider);
    const engine = await device.open();
    await engine.sync();
    let pushed: () => void = () => {};
    const pushStarted = new Promise<void>((resolve) => (pushed = resolve));
    provider.onPush = () => {
      pushed();
      return new Promise(() => {}); // a request that never answers
    };
    engine.start();
    await engine.db.table('threads').put({ id: 't1' });
    await pushStarted;
    const started = Date.now();
    await engine.close();
    expect(Date.now() - started).toBeLessThan(10_000);
    const reopened = await device.open();
    opened.push(reopened);
    expect(await reopened.pendingCount()).toBe(1);
  });
});

describe('multi-tab', () => {
  it('only the lock holder runs the loops; other tabs write into the shared outbox; leadership moves on close', async () => {
    const provider = new ScriptedProvider();
    const locks = new MemoryLocks();
    const device = makeDevice('ws-tabs', provider, { locks, outboxPollMs: 20 });
    const tab1 = await device.open();
    const tab2 = await device.open();
    opened.push(tab2);
    expect(tab2.deviceId).toBe(tab1.deviceId);
    tab1.start();
    tab2.start();
    await new Promise((r) => setTimeout(r, 30));
    expect([tab1.isLeader, tab2.isLeader]).toEqual([true, false]);

    await tab2.db.table('threads').put({ id: 'from-tab2' });
    await waitFor(async () => provider.pushes.flat().some((o) => o.pk === 'from-tab2'));
    await waitFor(async () => (await tab2.pendingCount()) === 0);

    await tab1.close();
    await waitFor(async () => tab2.isLeader);
    await tab2.db.table('threads').put({ id: 'after-close' });
    await waitFor(async () => provider.pushes.flat().some((o) => o.pk === 'after-close'));
  });

  it('tabs of one device never issue the same hlc', async () => {
    const provider = new ScriptedProvider();
    const device = makeDevice('ws-tabs-hlc', provider, { now: () => 1_732_540_000_000 });
    const tab1 = await device.open();
    const tab2 = await device.open();
    opened.push(tab1, tab2);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? tab1 : tab2).db.table('threads').put({ id: `t${i}` })),
    );
    const hlcs = (await tab1.db.table<PendingOpRow>('_or3sync_outbox').toArray()).map((o) => o.hlc);
    expect(hlcs).toHaveLength(20);
    expect(new Set(hlcs).size).toBe(20);
  });
});

describe('GatewayProvider', () => {
  function fakeFetch(responses: (() => Response | Promise<Response>)[], seen: Request[] = []): typeof fetch {
    return async (input, init) => {
      seen.push(new Request(input, init));
      const next = responses.shift();
      if (!next) throw new TypeError('no more responses');
      return next();
    };
  }
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
  const scope = { workspaceId: 'w 1', deviceId: 'aaaaaaaaaaaaaaaa', projectId: 'p1' };

  it('sends the bearer token, the device id and the scope; reads Date, and leaves the push budget to pushes', async () => {
    const seen: Request[] = [];
    const provider = new GatewayProvider({
      baseUrl: 'http://gw.test/',
      getToken: () => 'tok',
      fetch: fakeFetch(
        [() => json(200, { changes: [], cursor: 4, has_more: false }, { 'ratelimit-remaining': '3', date: 'Wed, 25 Nov 2026 11:50:53 GMT' })],
        seen,
      ),
    });
    const page = await provider.pull(scope, 4, 10);
    expect(seen[0]!.url).toBe('http://gw.test/v1/workspaces/w%201/changes?cursor=4&limit=10&project_id=p1');
    expect(seen[0]!.headers.get('authorization')).toBe('Bearer tok');
    expect(seen[0]!.headers.get('x-device-id')).toBe('aaaaaaaaaaaaaaaa');
    // A pull's RateLimit-Remaining is the pull class's budget, not the one the push loop paces by.
    expect(provider.lastRateLimitRemaining).toBeNull();
    expect(page.server_time).toBe(Date.parse('Wed, 25 Nov 2026 11:50:53 GMT') + 500);
  });

  it("keeps the latest push answer's RateLimit-Remaining as the push budget; a pull's larger one does not replace it", async () => {
    const provider = new GatewayProvider({
      baseUrl: 'http://gw.test',
      getToken: () => 'tok',
      fetch: fakeFetch([
        () => json(200, { results: [], server_version: 0, server_time: 1 }, { 'ratelimit-remaining': '2' }),
        () => json(200, { changes: [], cursor: 0, has_more: false }, { 'ratelimit-remaining': '500' }),
      ]),
    });
    await provider.push(scope, []);
    expect(provider.lastRateLimitRemaining).toBe(2);
    await provider.pull(scope, 0);
    expect(provider.lastRateLimitRemaining).toBe(2);
  });

  it('maps error bodies, Retry-After and network failures to SyncProviderError', async () => {
    const provider = new GatewayProvider({
      baseUrl: 'http://gw.test',
      getToken: () => 'tok',
      fetch: fakeFetch([
        () => json(429, { error: { code: 'rate_limited', message: 'slow' } }, { 'retry-after': '7' }),
        () => json(410, { error: { code: 'cursor_expired', message: 'old', oldest_retained_version: 40 } }),
        () => {
          throw new TypeError('connection refused');
        },
        () => new Response('<html>bad gateway</html>', { status: 502 }),
      ]),
    });
    const errors: SyncProviderError[] = [];
    for (let i = 0; i < 4; i++) await provider.pull(scope, 0).catch((e: SyncProviderError) => errors.push(e));
    expect(errors.map((e) => [e.code, e.status, e.retryable])).toEqual([
      ['rate_limited', 429, true],
      ['cursor_expired', 410, false],
      ['network_error', 0, true],
      ['internal', 502, true],
    ]);
    expect(errors[0]!.retryAfterMs).toBe(7000);
    expect(errors[1]!.oldestRetainedVersion).toBe(40);
  });

  it('a request that gets no answer within requestTimeoutMs fails as a retryable network_error', async () => {
    // A fetch that honours its signal and otherwise never answers: a connection gone silent.
    const silent: typeof fetch = (_input, init) =>
      new Promise((_, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)));
    const provider = new GatewayProvider({ baseUrl: 'http://gw.test', getToken: () => 'tok', fetch: silent, requestTimeoutMs: 50 });
    const started = Date.now();
    const error = (await provider.pull(scope, 0).catch((e: unknown) => e)) as SyncProviderError;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect([error.code, error.status, error.retryable]).toEqual(['network_error', 0, true]);
    expect(error.message).toContain('no answer within 50 ms');
  });

  it('retries once with a refreshed token after a 401', async () => {
    const tokens: boolean[] = [];
    const seen: Request[] = [];
    const provider = new GatewayProvider({
      baseUrl: 'http://gw.test',
      getToken: ({ forceRefresh }) => (tokens.push(forceRefresh), forceRefresh ? 'fresh' : 'stale'),
      fetch: fakeFetch(
        [() => json(401, { error: { code: 'token_expired', message: 'expired' } }), () => json(200, { results: [], server_version: 0 })],
        seen,
      ),
    });
    await provider.push(scope, []);
    expect(tokens).toEqual([false, true]);
    expect(seen.map((r) => r.headers.get('authorization'))).toEqual(['Bearer stale', 'Bearer fresh']);
  });

  it('subscribe by polling delivers changes in order and ends with onError on cursor_expired', async () => {
    const provider = new GatewayProvider({
      baseUrl: 'http://gw.test',
      getToken: () => 'tok',
      pollIntervalMs: 1,
      transports: ['poll'],
      fetch: fakeFetch([
        () => json(200, { changes: [change(3, 'a')], cursor: 3, has_more: true }),
        () => json(200, { changes: [change(4, 'b')], cursor: 4, has_more: false }),
        () => json(200, { changes: [], cursor: 4, has_more: false }),
        () => json(410, { error: { code: 'cursor_expired', message: 'old' } }),
      ]),
    });
    const batches: ChangesBatch[] = [];
    const failure = await new Promise<SyncProviderError>((resolve) => {
      provider.subscribe(scope, 2, (batch) => void batches.push(batch), resolve);
    });
    expect(batches.map((b) => [b.from, b.to, b.changes.map((c) => c.pk)])).toEqual([
      [2, 3, ['a']],
      [3, 4, ['b']],
    ]);
    expect(failure.code).toBe('cursor_expired');
    provider.dispose();
  });
});

/** A started device on a scripted provider, once its realtime subscription is open. */
async function subscribedDevice(name: string) {
  const provider = new ScriptedProvider();
  const engine = await makeDevice(name, provider).open();
  opened.push(engine);
  engine.start();
  await waitFor(async () => provider.subscriptions.length === 1);
  const subscription = provider.subscriptions[0]!;
  return { provider, engine, subscription };
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Records the order in which the fake IndexedDB's requests are asked and answered, until `stop()`. */
function watchRequests(): { events: string[]; stop(): void } {
  const events: string[] = [];
  const restores: (() => void)[] = [];
  for (const proto of [FakeIDBObjectStore.prototype, FakeIDBIndex.prototype] as unknown as Record<string, unknown>[]) {
    for (const name of ['get', 'getAll', 'getAllKeys', 'put', 'add', 'delete', 'openCursor', 'count']) {
      const original = proto[name] as ((...args: unknown[]) => IDBRequest) | undefined;
      if (typeof original !== 'function') continue;
      proto[name] = function (this: unknown, ...args: unknown[]) {
        const request = original.apply(this, args);
        events.push(name);
        request.addEventListener('success', () => events.push(`answer ${name}`));
        return request;
      };
      restores.push(() => (proto[name] = original));
    }
  }
  return { events, stop: () => restores.forEach((restore) => restore()) };
}

