/**
 * Rescans of two tabs sharing one database (found by packages/faults: a
 * device with two tabs and no Web Locks lost records when both rescanned).
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

/** Serves the snapshot two items a page, each page a few ms late, so two rescans interleave. */
class PagedSnapshotProvider extends ScriptedProvider {
  override async snapshot(_scope: SyncScope, pageToken: string | null): Promise<SnapshotPage> {
    await new Promise((resolve) => setTimeout(resolve, 5));
    const start = pageToken === null ? 0 : Number(pageToken);
    const items = this.snapshotItems.slice(start, start + 2);
    const next = start + 2 < this.snapshotItems.length ? String(start + 2) : null;
    return { snapshot_version: this.snapshotVersion ?? 0, items, next_page_token: next };
  }
}

/** Serves the first snapshot page, then never answers (a node that stopped answering). */
class StalledSnapshotProvider extends PagedSnapshotProvider {
  override async snapshot(scope: SyncScope, pageToken: string | null): Promise<SnapshotPage> {
    if (pageToken !== null) {
      this.stalled = true;
      return new Promise(() => {});
    }
    return super.snapshot(scope, pageToken);
  }
  stalled = false;
}

function thread(i: number): SnapshotItem {
  const id = `t${i}`;
  const hlc = `1732540000000-${String(i).padStart(6, '0')}-aaaaaaaaaaaaaaaa`;
  return {
    table_name: 'threads',
    pk: id,
    payload: { id, title: `thread ${i}`, clock: 1, hlc },
    deleted: false,
    clock: 1,
    hlc,
    op_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    server_version: i,
  };
}

describe('rescan with two tabs on one database', () => {
  it('rescan_never_swaps_in_a_partial_snapshot: two tabs rescanning at once leave every record of the snapshot', async () => {
    const provider = new PagedSnapshotProvider();
    provider.snapshotItems = Array.from({ length: 10 }, (_, i) => thread(i + 1));
    provider.snapshotVersion = 10;
    // Two tabs without Web Locks: both lead, as the engine allows.
    const device = makeDevice('ws-tabs', provider, { locks: null });
    const a = await device.open();
    const b = await device.open();
    opened.push(a, b);
    expect(await a.sync()).toMatchObject({ error: null });
    expect(await a.db.table('threads').count()).toBe(10);

    // Both tabs rescan at once; the second starts while the first is staging pages.
    const first = a.rescan();
    await new Promise((resolve) => setTimeout(resolve, 12));
    const second = b.rescan();
    await Promise.all([first, second]);
    // A tab that found the other one rescanning retries after it.
    for (const tab of [a, b]) if ((await tab.stats()).cursor !== 10) await tab.sync();

    expect((await a.db.table('threads').toArray()).map((t) => t.id).sort()).toEqual(
      provider.snapshotItems.map((i) => i.pk).sort(),
    );
    expect((await a.stats()).cursor).toBe(10);
  });

  it('a_tab_closed_mid_rescan_gives_the_lease_back: the reloaded tab rescans at once', async () => {
    const stalled = new StalledSnapshotProvider();
    stalled.snapshotItems = Array.from({ length: 6 }, (_, i) => thread(i + 1));
    stalled.snapshotVersion = 6;
    const device = makeDevice('ws-reload', stalled, { locks: null });
    const first = await device.open();
    const running = first.sync();
    while (!stalled.stalled) await new Promise((resolve) => setTimeout(resolve, 5));
    // The page reloads while the rescan waits on a request that never answers.
    await first.close();
    void running.catch(() => {});

    const answering = new PagedSnapshotProvider();
    answering.snapshotItems = stalled.snapshotItems;
    answering.snapshotVersion = 6;
    const reloaded = await device.open({ provider: answering });
    opened.push(reloaded);
    expect(await reloaded.sync()).toMatchObject({ error: null });
    expect((await reloaded.stats()).cursor).toBe(6);
    expect(await reloaded.db.table('threads').count()).toBe(6);
  });
});
