/**
 * Convex's limits, enforced by our own checks (convex-test does not): payload
 * size against the document limit, array length, nesting, field names, and
 * the per-transaction budget of a push. Nothing is ever truncated.
 */
import { describe, expect, test } from 'vitest';
import { api } from '../convex/_generated/api.js';
import { CONVEX_LIMITS, CONVEX_MAX_PAYLOAD_BYTES, MAX_PAYLOAD_DEPTH, checkConvexStorable } from '../convex/lib/convexLimits.js';
import { as, errorOf, newBackend, put, workspaceWith } from './setup.js';

const KiB = 1024;

async function setup() {
  const t = newBackend();
  const workspace = await workspaceWith(t, 'alice');
  const alice = as(t, 'alice');
  const push = (ops: unknown[]) => alice.mutation(api.sync.push, { workspace_id: workspace, ops });
  return { t, workspace, alice, push };
}

/** A string of `bytes` ASCII chars that is not all one letter. */
function text(bytes: number): string {
  const unit = 'The quick brown fox jumps over the lazy dog. 0123456789 ';
  return unit.repeat(Math.ceil(bytes / unit.length)).slice(0, bytes);
}

describe('payload size', () => {
  test('a 512 KiB message payload round-trips unchanged through push, pull, snapshot and getRecord', async () => {
    const { workspace, alice, push } = await setup();
    const op = put('messages', 'm1', { thread_id: 't1', role: 'assistant', data: text(512 * KiB), index: 0, order_key: 'k' });
    expect((await push([op])).results[0]?.status).toBe('applied');
    const pulled = await alice.query(api.sync.pull, { workspace_id: workspace, cursor: 0 });
    expect(pulled.changes[0]?.payload).toEqual(op.payload);
    const snapshot = await alice.query(api.sync.snapshot, { workspace_id: workspace });
    expect(snapshot.items[0]?.payload).toEqual(op.payload);
    const record = await alice.query(api.sync.getRecord, { workspace_id: workspace, table_name: 'messages', pk: 'm1' });
    expect(record?.payload).toEqual(op.payload);
    expect(JSON.stringify(record?.payload).length).toBeGreaterThan(512 * KiB);
  });

  test('the largest accepted payload fits a Convex document with its stamp', async () => {
    const { push } = await setup();
    const base = JSON.stringify({ id: 'm1', data: '' }).length;
    const op = put('messages', 'm1', { data: text(CONVEX_MAX_PAYLOAD_BYTES - base) });
    expect(JSON.stringify(op.payload).length).toBe(CONVEX_MAX_PAYLOAD_BYTES);
    expect((await push([op])).results[0]?.status).toBe('applied');
  });

  test('a payload over the Convex document limit is rejected with payload_too_large, not truncated', async () => {
    const { workspace, alice, push } = await setup();
    const op = put('messages', 'm1', { data: text(CONVEX_LIMITS.documentBytes + KiB) });
    const result = (await push([op])).results[0]!;
    expect(result).toMatchObject({ status: 'rejected', error: { code: 'payload_too_large', field: 'payload' } });
    expect(await alice.query(api.sync.getRecord, { workspace_id: workspace, table_name: 'messages', pk: 'm1' })).toBeNull();
  });

  test('one byte over the declared limit is rejected', async () => {
    const { push } = await setup();
    const base = JSON.stringify({ id: 'm1', data: '' }).length;
    const op = put('messages', 'm1', { data: text(CONVEX_MAX_PAYLOAD_BYTES - base + 1) });
    expect((await push([op])).results[0]).toMatchObject({ status: 'rejected', error: { code: 'payload_too_large' } });
  });

  test('a payload small as JSON but too large as a Convex document is rejected', async () => {
    // 18 arrays of 8192 zeros: 2 bytes each as JSON (about 295 KB), 9 bytes each in Convex (1.3 MB).
    const { push } = await setup();
    const columns: Record<string, number[]> = {};
    for (let i = 0; i < 18; i++) columns[`c${i}`] = new Array<number>(8192).fill(0);
    const op = put('posts', 'p1', columns);
    expect(JSON.stringify(op.payload).length).toBeLessThan(CONVEX_MAX_PAYLOAD_BYTES);
    const result = (await push([op])).results[0]!;
    expect(result).toMatchObject({ status: 'rejected', error: { code: 'payload_too_large' } });
    expect(result.status === 'rejected' && result.error.message).toMatch(/Convex document/);
  });
});

describe('payload shape', () => {
  test('an array of more than 8192 elements is payload_too_large', async () => {
    const { push } = await setup();
    const op = put('posts', 'p1', { tags: new Array<number>(8193).fill(1) });
    expect((await push([op])).results[0]).toMatchObject({ status: 'rejected', error: { code: 'payload_too_large' } });
    const ok = put('posts', 'p2', { tags: new Array<number>(8192).fill(1) });
    expect((await push([ok])).results[0]?.status).toBe('applied');
  });

  test('nesting deeper than a document allows is payload_too_large', async () => {
    const { push } = await setup();
    const nest = (levels: number): unknown => (levels === 0 ? 1 : { n: nest(levels - 1) });
    // The payload object is one level; MAX_PAYLOAD_DEPTH - 1 more fit.
    const deepest = put('posts', 'p1', { n: nest(MAX_PAYLOAD_DEPTH - 1) });
    expect((await push([deepest])).results[0]?.status).toBe('applied');
    const tooDeep = put('posts', 'p2', { n: nest(MAX_PAYLOAD_DEPTH) });
    expect((await push([tooDeep])).results[0]).toMatchObject({ status: 'rejected', error: { code: 'payload_too_large' } });
  });

  test('an object of more than 1024 fields is payload_too_large', async () => {
    const { push } = await setup();
    const fields: Record<string, number> = {};
    for (let i = 0; i < 1024; i++) fields[`f${i}`] = i;
    const op = put('posts', 'p1', fields);
    expect((await push([op])).results[0]).toMatchObject({ status: 'rejected', error: { code: 'payload_too_large' } });
  });

  test('field names Convex cannot store are invalid_op', () => {
    expect(checkConvexStorable({ id: 'x', $ref: 1 })).toMatchObject({ code: 'invalid_op' });
    expect(checkConvexStorable({ id: 'x', nested: { 'é': 1 } })).toMatchObject({ code: 'invalid_op' });
    expect(checkConvexStorable({ id: 'x', '': 1 })).toMatchObject({ code: 'invalid_op' });
    expect(checkConvexStorable({ id: 'x', text: 'lone \ud800 surrogate' })).toMatchObject({ code: 'invalid_op' });
    expect(checkConvexStorable({ id: 'x', _local: true, 'with space': 'é😀' })).toBeNull();
  });
});

describe('transaction budget', () => {
  test('a batch whose writes would exceed a Convex transaction fails whole with batch_too_large', async () => {
    const { workspace, alice, push } = await setup();
    // Each op writes its payload twice (record and log): 8 x 900 KiB x 2 > 12 MiB.
    const ops = Array.from({ length: 8 }, (_, i) => put('messages', `m${i}`, { data: text(900 * KiB) }));
    expect(await errorOf(push(ops))).toMatchObject({ code: 'batch_too_large', field: 'ops' });
    const pulled = await alice.query(api.sync.pull, { workspace_id: workspace, cursor: 0 });
    expect(pulled.changes).toHaveLength(0);
    // Split in two, both halves fit.
    expect((await push(ops.slice(0, 4))).results.every((r) => r.status === 'applied')).toBe(true);
    expect((await push(ops.slice(4))).results.every((r) => r.status === 'applied')).toBe(true);
  });

  test('superseded winners count toward the answer, so a batch cannot answer more than Convex returns', async () => {
    const { push } = await setup();
    const big = Array.from({ length: 9 }, (_, i) => put('messages', `m${i}`, { data: text(950 * KiB) }, { clock: 5 }));
    for (const op of big) expect((await push([op])).results[0]?.status).toBe('applied');
    const stale = big.map((op) => put('messages', op.pk, {}, { clock: 1 }));
    expect(await errorOf(push(stale))).toMatchObject({ code: 'batch_too_large' });
    const half = (await push(stale.slice(0, 4))).results;
    expect(half.every((r) => r.status === 'superseded' && JSON.stringify(r.winner.payload).length > 950 * KiB)).toBe(true);
  });
});
