/** Snapshot: pages in (table_name, pk) order, tombstones, token binding, project scope. */
import { describe, expect, test, vi } from 'vitest';
import { api } from '../convex/_generated/api.js';
import { as, del, errorOf, newBackend, put, workspaceWith } from './setup.js';

async function setup() {
  const t = newBackend();
  const workspace = await workspaceWith(t, 'alice');
  const alice = as(t, 'alice');
  const push = (ops: unknown[]) => alice.mutation(api.sync.push, { workspace_id: workspace, ops });
  const page = (args: { page_token?: string | null; limit?: number; project_id?: string | null; workspace_id?: string } = {}) =>
    alice.query(api.sync.snapshot, { workspace_id: workspace, ...args });
  const all = async (args: { limit?: number; project_id?: string | null } = {}) => {
    const first = await page(args);
    const items = [...first.items];
    let token = first.next_page_token;
    while (token !== null) {
      const next = await page({ ...args, page_token: token });
      expect(next.snapshot_version).toBe(first.snapshot_version);
      items.push(...next.items);
      token = next.next_page_token;
    }
    return { snapshot_version: first.snapshot_version, items };
  };
  return { t, workspace, alice, push, page, all };
}

describe('snapshot', () => {
  test('every record, tombstones included, ordered by (table_name, pk), across pages', async () => {
    const { push, all } = await setup();
    await push([
      put('threads', 't2'),
      put('kv', 'b'),
      put('threads', 't1'),
      put('kv', 'a'),
      put('messages', 'm1', { thread_id: 't1' }),
      put('file_meta', 'h1', { size: 1 }),
    ]);
    await push([del('kv', 'b')]);
    const snapshot = await all({ limit: 2 });
    expect(snapshot.snapshot_version).toBe(7);
    expect(snapshot.items.map((i) => `${i.table_name}/${i.pk}`)).toEqual([
      'file_meta/h1',
      'kv/a',
      'kv/b',
      'messages/m1',
      'threads/t1',
      'threads/t2',
    ]);
    expect(snapshot.items.find((i) => i.pk === 'b')).toMatchObject({ deleted: true, server_version: 7, payload: null });
  });

  test('an empty workspace is one empty page at version 0', async () => {
    const { page } = await setup();
    expect(await page()).toEqual({ snapshot_version: 0, items: [], next_page_token: null });
  });

  test('snapshot_version is fixed by the first page; later pages may show newer versions', async () => {
    const { push, page } = await setup();
    await push([put('kv', 'a', { v: 1 }), put('kv', 'b', { v: 1 }, { clock: 1 })]);
    const first = await page({ limit: 1 });
    expect(first.snapshot_version).toBe(2);
    await push([put('kv', 'b', { v: 2 }, { clock: 2 })]);
    const second = await page({ page_token: first.next_page_token });
    expect(second.snapshot_version).toBe(2);
    expect(second.items[0]).toMatchObject({ pk: 'b', payload: { v: 2 }, server_version: 3 });
  });

  test('a page token is bound to its workspace and scope', async () => {
    const { t, push, page } = await setup();
    const other = await workspaceWith(t, 'alice');
    await push([put('kv', 'a'), put('kv', 'b')]);
    const first = await page({ limit: 1 });
    const token = first.next_page_token;
    expect(token).not.toBeNull();
    expect(await errorOf(page({ page_token: token, workspace_id: other }))).toMatchObject({
      code: 'invalid_input',
      field: 'page_token',
    });
    expect(await errorOf(page({ page_token: token, project_id: 'P' }))).toMatchObject({ code: 'invalid_input' });
    expect(await errorOf(page({ page_token: 'garbage!' }))).toMatchObject({ code: 'invalid_input' });
  });

  test("a project's snapshot holds its threads, their messages (by the thread's current project) and workspace-wide tables", async () => {
    const { push, all } = await setup();
    await push([
      put('threads', 't1', { project_id: 'P' }, { clock: 1 }),
      put('messages', 'm1', { thread_id: 't1' }),
      put('threads', 't2', { project_id: 'Q' }),
      put('messages', 'm2', { thread_id: 't2' }),
      put('kv', 'k'),
    ]);
    await push([put('threads', 't1', { project_id: 'Q' }, { clock: 2 })]);
    expect((await all({ project_id: 'Q' })).items.map((i) => i.pk)).toEqual(['k', 'm1', 'm2', 't1', 't2']);
    expect((await all({ project_id: 'P' })).items.map((i) => i.pk)).toEqual(['k']);
  });

  test('pk order survives unusual keys', async () => {
    const { push, all } = await setup();
    const pks = ['b', 'a b', 'a/b', 'é', '😀', 'A', 'a'];
    await push(pks.map((pk) => put('kv', pk)));
    const seen = (await all({ limit: 2 })).items.map((i) => i.pk);
    expect([...seen].sort()).toEqual([...pks].sort());
    expect(new Set(seen).size).toBe(pks.length);
  });

  test('committed_at: each item and each pulled change carries its commit time, a tombstone the time of its delete', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.UTC(2026, 0, 1) });
    try {
      const { workspace, alice, push, all } = await setup();
      await push([put('kv', 'a'), put('kv', 'b')]);
      vi.setSystemTime(Date.UTC(2026, 0, 2));
      await push([del('kv', 'b')]);
      const items = (await all()).items;
      expect(items.map((i) => [i.pk, i.committed_at])).toEqual([
        ['a', Date.UTC(2026, 0, 1)],
        ['b', Date.UTC(2026, 0, 2)],
      ]);
      const pulled = await alice.query(api.sync.pull, { workspace_id: workspace, cursor: 0 });
      expect(pulled.changes.map((c) => c.committed_at)).toEqual([Date.UTC(2026, 0, 1), Date.UTC(2026, 0, 1), Date.UTC(2026, 0, 2)]);
    } finally {
      vi.useRealTimers();
    }
  });
});
