/** Pull and watchChanges: order, paging, bounds, and project scope resolved at commit time. */
import { describe, expect, test } from 'vitest';
import { api } from '../convex/_generated/api.js';
import { readChanges } from '../convex/lib/changes.js';
import { as, del, errorOf, newBackend, put, workspaceWith } from './setup.js';

async function setup() {
  const t = newBackend();
  const workspace = await workspaceWith(t, 'alice');
  const alice = as(t, 'alice');
  const push = (ops: unknown[]) => alice.mutation(api.sync.push, { workspace_id: workspace, ops });
  const pull = (cursor: number, extra: { limit?: number; project_id?: string | null } = {}) =>
    alice.query(api.sync.pull, { workspace_id: workspace, cursor, ...extra });
  return { t, workspace, alice, push, pull };
}

describe('pull', () => {
  test('changes come after the cursor in ascending order with their stamps', async () => {
    const { push, pull } = await setup();
    const ops = [put('kv', 'a'), put('kv', 'b'), del('kv', 'a')];
    await push(ops);
    const page = await pull(1);
    expect(page.changes.map((c) => [c.server_version, c.pk, c.operation])).toEqual([
      [2, 'b', 'put'],
      [3, 'a', 'delete'],
    ]);
    expect(page.changes[0]).toEqual({
      server_version: 2,
      table_name: 'kv',
      pk: 'b',
      operation: 'put',
      payload: ops[1]!.payload,
      clock: ops[1]!.clock,
      hlc: ops[1]!.hlc,
      op_id: ops[1]!.op_id,
      device_id: ops[1]!.device_id,
      scope_change: false,
      committed_at: expect.any(Number),
    });
    expect(page).toMatchObject({ cursor: 3, has_more: false, oldest_retained_version: 1 });
  });

  test('pages by limit with has_more until the end', async () => {
    const { push, pull } = await setup();
    await push(Array.from({ length: 7 }, (_, i) => put('kv', `k${i}`)));
    const seen: number[] = [];
    let cursor = 0;
    for (;;) {
      const page = await pull(cursor, { limit: 3 });
      seen.push(...page.changes.map((c) => c.server_version));
      cursor = page.cursor;
      if (!page.has_more) break;
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(cursor).toBe(7);
  });

  test('a caught-up pull answers no changes and keeps the cursor', async () => {
    const { push, pull } = await setup();
    await push([put('kv', 'a')]);
    expect(await pull(1)).toMatchObject({ changes: [], cursor: 1, has_more: false });
  });

  test('limit is capped at 1000 and must be positive; the cursor must be a non-negative integer', async () => {
    const { push, pull } = await setup();
    await push(Array.from({ length: 500 }, (_, i) => put('kv', `a${i}`)));
    await push(Array.from({ length: 500 }, (_, i) => put('kv', `b${i}`)));
    await push(Array.from({ length: 10 }, (_, i) => put('kv', `c${i}`)));
    expect((await pull(0, { limit: 5000 })).changes).toHaveLength(1000);
    expect((await pull(0)).changes).toHaveLength(500);
    expect(await errorOf(pull(0, { limit: 0 }))).toMatchObject({ code: 'invalid_input', field: 'limit' });
    expect(await errorOf(pull(-1))).toMatchObject({ code: 'invalid_input', field: 'cursor' });
    expect(await errorOf(pull(1.5))).toMatchObject({ code: 'invalid_input', field: 'cursor' });
  });

  test('a page holds about 4 MiB of payload, and always at least one change', async () => {
    const { push, pull } = await setup();
    const big = (pk: string) => put('messages', pk, { data: 'x'.repeat(900 * 1024) });
    for (const pk of ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']) await push([big(pk)]);
    const first = await pull(0);
    expect(first.changes.length).toBeGreaterThanOrEqual(1);
    expect(first.changes.length).toBeLessThan(6);
    expect(first.has_more).toBe(true);
    const rest = await pull(first.cursor);
    expect(first.changes.length + rest.changes.length).toBe(6);
  });
});

describe('project scope', () => {
  test('threads and their messages are in their project; other tables are always in scope', async () => {
    const { push, pull } = await setup();
    await push([
      put('threads', 't1', { project_id: 'P' }),
      put('messages', 'm1', { thread_id: 't1' }),
      put('threads', 't2', { project_id: 'Q' }),
      put('messages', 'm2', { thread_id: 't2' }),
      put('threads', 't3', { project_id: null }),
      put('kv', 'k1'),
      put('projects', 'P', { name: 'p' }),
    ]);
    const inP = await pull(0, { project_id: 'P' });
    expect(inP.changes.map((c) => c.pk)).toEqual(['t1', 'm1', 'k1', 'P']);
    expect(inP.cursor).toBe(7);
    expect((await pull(0)).changes).toHaveLength(7);
    expect((await pull(0, { project_id: null })).changes).toHaveLength(7);
  });

  test("a message's project is its thread's project at commit time", async () => {
    const { push, pull } = await setup();
    await push([put('threads', 't1', { project_id: 'P' }, { clock: 1 }), put('messages', 'm1', { thread_id: 't1' })]);
    await push([put('threads', 't1', { project_id: 'Q' }, { clock: 2 })]);
    await push([put('messages', 'm2', { thread_id: 't1' })]);
    expect((await pull(0, { project_id: 'P' })).changes.map((c) => c.pk)).toEqual(['t1', 'm1', 't1']);
    expect((await pull(0, { project_id: 'Q' })).changes.map((c) => c.pk)).toEqual(['t1', 'm2']);
  });

  test('a thread that changes project is logged with both projects and scope_change', async () => {
    const { push, pull } = await setup();
    await push([put('threads', 't1', { project_id: 'P' }, { clock: 1 })]);
    await push([put('threads', 't1', { project_id: 'Q' }, { clock: 2 })]);
    const moved = (await pull(1, { project_id: 'P' })).changes;
    expect(moved).toHaveLength(1);
    expect(moved[0]).toMatchObject({ pk: 't1', scope_change: true, payload: { project_id: 'Q' } });
    expect((await pull(1, { project_id: 'Q' })).changes[0]).toMatchObject({ pk: 't1', scope_change: true });
    expect((await pull(0, { project_id: 'P' })).changes[0]).toMatchObject({ scope_change: false });
  });

  test('deleting a thread resolves its project from the stored row', async () => {
    const { push, pull } = await setup();
    await push([put('threads', 't1', { project_id: 'P' }, { clock: 1 })]);
    await push([del('threads', 't1', { clock: 2 }), put('messages', 'm1', { thread_id: 't1' })]);
    const inP = (await pull(1, { project_id: 'P' })).changes;
    expect(inP.map((c) => [c.pk, c.operation, c.scope_change])).toEqual([
      ['t1', 'delete', false],
      ['m1', 'put', false],
    ]);
  });

  test('a new thread whose messages arrived first is logged with scope_change', async () => {
    const { push, pull } = await setup();
    await push([put('messages', 'm1', { thread_id: 't1' })]);
    await push([put('threads', 't1', { project_id: 'P' })]);
    expect((await pull(0, { project_id: 'P' })).changes).toEqual([
      expect.objectContaining({ pk: 't1', scope_change: true }),
    ]);
  });

  test('a filtered page may hold no changes yet advance the cursor', async () => {
    const { t, workspace, push } = await setup();
    await push(Array.from({ length: 12 }, (_, i) => put('threads', `t${i}`, { project_id: 'Q' })));
    await push([put('threads', 'p1', { project_id: 'P' })]);
    // The same reader as pull, with a small examination bound so the test stays small.
    const bounds = { limit: 500, answerBytes: 1 << 20, examined: 5 };
    const read = (cursor: number) => t.run((ctx) => readChanges(ctx, workspace, cursor, 'P', bounds));
    const first = await read(0);
    expect(first).toMatchObject({ changes: [], cursor: 5, has_more: true });
    const second = await read(first.cursor);
    expect(second).toMatchObject({ changes: [], cursor: 10, has_more: true });
    const third = await read(second.cursor);
    expect(third.changes.map((c) => c.pk)).toEqual(['p1']);
    expect(third).toMatchObject({ cursor: 13, has_more: false });
  });
});

describe('watchChanges', () => {
  test('answers the newest version and a bounded batch after the cursor', async () => {
    const { workspace, alice, push } = await setup();
    await push(Array.from({ length: 250 }, (_, i) => put('kv', `k${i}`)));
    const watch = (cursor: number) => alice.query(api.sync.watchChanges, { workspace_id: workspace, cursor });
    const first = await watch(0);
    expect(first.server_version).toBe(250);
    expect(first.changes).toHaveLength(200);
    expect(first).toMatchObject({ cursor: 200, has_more: true });
    const second = await watch(first.cursor);
    expect(second.changes.map((c) => c.server_version)).toEqual(Array.from({ length: 50 }, (_, i) => 201 + i));
    expect(await watch(250)).toMatchObject({ changes: [], cursor: 250, has_more: false, server_version: 250 });
  });
});
