/**
 * A first sync into an empty database writes each batch of snapshot pages before
 * the reads of the records' local state answer, and corrects, in the same
 * transaction, the records a user wrote meanwhile (PROTOCOL.md section 6,
 * "Rescan"): a local write made during a first sync is never overwritten by a
 * snapshot version it beats under LWW, and loses only to one that beats it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SyncEngine } from '../src/engine.js';
import type { SyncScope } from '../src/provider.js';
import type { SnapshotItem, SnapshotPage } from '@or3/sync-protocol';
import { makeDevice } from './support/devices.js';
import { ScriptedProvider } from './support/scripted-provider.js';

const opened: SyncEngine[] = [];
afterEach(async () => {
  for (const engine of opened.splice(0)) await engine.close();
});

/** An old stamp of another device: a local write made now beats it at the same clock. */
function item(tableName: string, pk: string, n: number, clock: number, deleted = false): SnapshotItem {
  const hlc = `1732540000000-${String(n).padStart(6, '0')}-aaaaaaaaaaaaaaaa`;
  const payload = tableName === 'kv' ? { id: pk, value: `server ${pk}` } : { id: pk, title: `server ${pk}` };
  return {
    table_name: tableName,
    pk,
    payload: deleted ? { ...payload, deleted: true } : payload,
    deleted,
    clock,
    hlc,
    op_id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    server_version: n,
  };
}

/** Serves the snapshot in pages of 2; before answering the page at `writeAt`, awaits `duringSync` (the user's writes). */
class WritesDuringSyncProvider extends ScriptedProvider {
  duringSync: (() => Promise<void>) | null = null;
  constructor(private readonly writeAt: string) {
    super();
    this.snapshotPageSize = 2;
  }

  override async snapshot(scope: SyncScope, pageToken: string | null): Promise<SnapshotPage> {
    if (pageToken === this.writeAt && this.duringSync) await this.duringSync();
    return super.snapshot(scope, pageToken);
  }
}

describe('first sync into an empty database', () => {
  it('a_local_write_during_a_first_sync_is_kept_where_it_wins_lww_and_replaced_where_it_loses', async () => {
    // Pages: [t1 t2] [t3 t4] [t5 t6] [k0]. The user writes t5, t6 and k0 while the page [t3 t4]
    // is asked for, so their pages are fetched, and written, after the writes committed.
    const provider = new WritesDuringSyncProvider('2');
    provider.snapshotItems = [
      ...[1, 2, 3, 4].map((n) => item('threads', `t${n}`, n, 1)),
      item('threads', 't5', 5, 1), // same clock as the local write, older hlc: the local write wins
      item('threads', 't6', 6, 9), // a higher clock: the server's version wins
      item('kv', 'k0', 7, 1, true), // a hard delete the local write beats: the row stays, no tombstone
    ];
    provider.snapshotVersion = 7;
    const engine = await makeDevice('ws-first-sync-writes', provider).open();
    opened.push(engine);
    const conflicts: string[] = [];
    engine.on('sync.conflict:action:detected', (event) => conflicts.push(`${event.pk}:${event.winner}`));
    provider.duringSync = async () => {
      provider.duringSync = null;
      await engine.db.table('threads').put({ id: 't5', title: 'local t5' });
      await engine.db.table('threads').put({ id: 't6', title: 'local t6' });
      await engine.db.table('kv').put({ id: 'k0', value: 'local k0' });
    };

    expect(await engine.sync()).toMatchObject({ error: null });
    expect(provider.duringSync).toBeNull(); // the writes happened during the first sync

    const threads = await engine.db.table('threads').toArray();
    expect(threads.map((t) => [t.id, t.title])).toEqual([
      ['t1', 'server t1'],
      ['t2', 'server t2'],
      ['t3', 'server t3'],
      ['t4', 'server t4'],
      ['t5', 'local t5'],
      ['t6', 'server t6'],
    ]);
    expect(threads.find((t) => t.id === 't6')).toMatchObject({ clock: 9 });
    expect(await engine.db.table('kv').get('k0')).toMatchObject({ value: 'local k0', clock: 1 });
    expect(await engine.db.table('_or3sync_tombstones').get(['kv', 'k0'])).toBeUndefined();
    expect(conflicts.sort()).toEqual(['k0:local', 't5:local', 't6:remote']);
    // The local writes were pushed after the first sync: t5's and k0's as written, t6's too (the server settles it).
    const pushed = provider.pushes.flat().map((op) => op.pk).sort();
    expect(pushed).toEqual(['k0', 't5', 't6']);
    expect((await engine.stats()).cursor).toBe(7);
  });

  it('a first sync of many pages, several to a transaction, stores every record once with its tombstones', async () => {
    const provider = new ScriptedProvider();
    provider.snapshotPageSize = 7;
    provider.snapshotItems = Array.from({ length: 100 }, (_, i) => item('threads', `t${String(i).padStart(3, '0')}`, i + 1, 1 + (i % 3), i % 10 === 0));
    provider.snapshotVersion = 100;
    const engine = await makeDevice('ws-first-sync-pages', provider).open();
    opened.push(engine);
    expect(await engine.sync()).toMatchObject({ error: null });
    const threads = await engine.db.table('threads').toArray();
    expect(threads).toHaveLength(100);
    for (const [i, row] of threads.entries()) {
      expect(row).toMatchObject({ id: `t${String(i).padStart(3, '0')}`, clock: 1 + (i % 3), deleted: i % 10 === 0 });
    }
    expect(await engine.db.table('_or3sync_tombstones').count()).toBe(10);
    expect(await engine.pendingCount()).toBe(0);
    expect((await engine.stats()).cursor).toBe(100);
  });

  it('a record twice in a first sync (a snapshot has none) keeps the version that wins LWW, whichever page comes last', async () => {
    const provider = new ScriptedProvider();
    // Pages of one: while [t0] is written, the next three arrive and go into one transaction.
    provider.snapshotPageSize = 1;
    provider.snapshotItems = [item('threads', 't0', 1, 1), item('threads', 't1', 2, 5), item('threads', 't1', 3, 2), item('threads', 't3', 4, 1)];
    provider.snapshotVersion = 4;
    const engine = await makeDevice('ws-first-sync-twice', provider).open();
    opened.push(engine);
    expect(await engine.sync()).toMatchObject({ error: null });
    expect(await engine.db.table('threads').get('t1')).toMatchObject({ clock: 5 });
    expect(await engine.db.table('threads').count()).toBe(3);
  });

  it('a record twice in one snapshot page keeps the version that wins LWW, not the later one', async () => {
    const provider = new ScriptedProvider();
    // One page: its plan, made without local state, must still decide between the two versions of t1.
    provider.snapshotPageSize = 10;
    provider.snapshotItems = [item('threads', 't0', 1, 1), item('threads', 't1', 2, 5), item('threads', 't1', 3, 2, true), item('threads', 't3', 4, 1)];
    provider.snapshotVersion = 4;
    const engine = await makeDevice('ws-first-sync-twice-in-a-page', provider).open();
    opened.push(engine);
    expect(await engine.sync()).toMatchObject({ error: null });
    expect(await engine.db.table('threads').get('t1')).toMatchObject({ clock: 5, deleted: false });
    expect(await engine.db.table('_or3sync_tombstones').count()).toBe(0);
    expect(await engine.db.table('threads').count()).toBe(3);
  });
});
