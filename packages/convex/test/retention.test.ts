/**
 * ackCursor and garbage collection (PROTOCOL.md section 5): device positions,
 * the watermark, min_retention, device_ttl, tombstone payloads purged while
 * their stamps stay, cursor expiry, and op ids recognised by stamp.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { api, internal } from '../convex/_generated/api.js';
import { GC_BATCH } from '../convex/lib/retention.js';
import { DEVICE_A, DEVICE_B, as, del, errorOf, newBackend, put, workspaceWith } from './setup.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const START = Date.UTC(2026, 0, 1);

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'], now: START });
});
afterEach(() => {
  vi.useRealTimers();
});

async function setup() {
  const t = newBackend();
  const workspace = await workspaceWith(t, 'alice');
  const alice = as(t, 'alice');
  const push = (ops: unknown[]) => alice.mutation(api.sync.push, { workspace_id: workspace, ops });
  const pull = (cursor: number) => alice.query(api.sync.pull, { workspace_id: workspace, cursor });
  const ack = (device: string, cursor: number) =>
    alice.mutation(api.sync.ackCursor, { workspace_id: workspace, device_id: device, cursor });
  const gc = () => t.mutation(internal.gc.collect, { workspace_id: workspace });
  const logVersions = () =>
    t.run(async (ctx) =>
      (await ctx.db.query('change_log').withIndex('by_version', (q) => q.eq('workspace_id', workspace)).collect()).map(
        (e) => e.server_version,
      ),
    );
  return { t, workspace, alice, push, pull, ack, gc, logVersions };
}

/** Puts at the current (fake) time, stamped a second earlier. */
function putNow(pk: string, clock = 1, fields: Record<string, unknown> = {}) {
  return put('kv', pk, fields, { clock, ms: Date.now() - 1000 });
}

describe('ackCursor', () => {
  test('records the device position with the server time', async () => {
    const { t, workspace, push, ack } = await setup();
    await push([putNow('a'), putNow('b')]);
    await ack(DEVICE_A, 2);
    const positions = await t.run((ctx) =>
      ctx.db.query('device_cursors').withIndex('by_device', (q) => q.eq('workspace_id', workspace)).collect(),
    );
    expect(positions).toEqual([expect.objectContaining({ device_id: DEVICE_A, cursor: 2, seen_at: START, user_id: 'alice' })]);
  });

  test('keeps one position per scope a device syncs; the lowest holds back GC', async () => {
    const { t, workspace, alice, push, ack, gc, logVersions } = await setup();
    await push([putNow('a'), putNow('b'), putNow('c')]);
    await ack(DEVICE_A, 3);
    await alice.mutation(api.sync.ackCursor, { workspace_id: workspace, device_id: DEVICE_A, cursor: 1, project_id: 'P' });
    const positions = await t.run((ctx) =>
      ctx.db.query('device_cursors').withIndex('by_device', (q) => q.eq('workspace_id', workspace)).collect(),
    );
    expect(positions.map((p) => [p.project_id, p.cursor])).toEqual([
      [null, 3],
      ['P', 1],
    ]);
    vi.setSystemTime(START + 8 * DAY);
    await gc();
    expect(await logVersions()).toEqual([2, 3]);
  });

  test('refuses a malformed device id or a cursor beyond the newest version', async () => {
    const { push, ack } = await setup();
    await push([putNow('a')]);
    expect(await errorOf(ack('NOT-HEX', 1))).toMatchObject({ code: 'invalid_input', field: 'device_id' });
    expect(await errorOf(ack(DEVICE_A, 2))).toMatchObject({ code: 'invalid_input', field: 'cursor' });
    expect(await errorOf(ack(DEVICE_A, -1))).toMatchObject({ code: 'invalid_input', field: 'cursor' });
  });
});

describe('log GC', () => {
  test('entries younger than min_retention stay even when every device has applied them', async () => {
    const { push, ack, gc, logVersions } = await setup();
    await push([putNow('a'), putNow('b')]);
    await ack(DEVICE_A, 2);
    vi.setSystemTime(START + 6 * DAY);
    expect(await gc()).toMatchObject({ entriesPurged: 0, oldestRetainedVersion: 1 });
    expect(await logVersions()).toEqual([1, 2]);
  });

  test('entries older than min_retention and below the watermark are purged; oldest_retained_version rises', async () => {
    const { push, pull, ack, gc, logVersions } = await setup();
    await push([putNow('a'), putNow('b'), putNow('c')]);
    vi.setSystemTime(START + 8 * DAY);
    await push([putNow('d')]);
    await ack(DEVICE_A, 2);
    await ack(DEVICE_B, 4);
    expect(await gc()).toMatchObject({ entriesPurged: 2, oldestRetainedVersion: 3 });
    expect(await logVersions()).toEqual([3, 4]);
    // A device at 2 may still pull; a device at 1 has lost changes and must rescan.
    expect((await pull(2)).changes.map((c) => c.server_version)).toEqual([3, 4]);
    expect(await errorOf(pull(1))).toMatchObject({ code: 'cursor_expired', oldest_retained_version: 3 });
    expect(await errorOf(pull(0))).toMatchObject({ code: 'cursor_expired' });
  });

  test('the log is purged only up to the newest version committed before min_retention', async () => {
    const { push, ack, gc, logVersions } = await setup();
    await push([putNow('a')]);
    vi.setSystemTime(START + 5 * DAY);
    await push([putNow('b')]);
    vi.setSystemTime(START + 7 * DAY + 1);
    await ack(DEVICE_A, 2);
    await gc();
    expect(await logVersions()).toEqual([2]);
  });

  test('with no device position, only min_retention holds the log', async () => {
    const { push, gc, logVersions } = await setup();
    await push([putNow('a'), putNow('b')]);
    vi.setSystemTime(START + 8 * DAY);
    await gc();
    expect(await logVersions()).toEqual([]);
  });

  test('a device not seen for device_ttl no longer holds back GC', async () => {
    const { t, workspace, push, ack, gc, logVersions } = await setup();
    await push([putNow('a'), putNow('b')]);
    await ack(DEVICE_A, 0);
    vi.setSystemTime(START + 10 * DAY);
    await ack(DEVICE_B, 2);
    expect((await gc()).entriesPurged).toBe(0);
    vi.setSystemTime(START + 31 * DAY);
    expect(await gc()).toMatchObject({ devicesExpired: 1, entriesPurged: 2 });
    expect(await logVersions()).toEqual([]);
    const devices = await t.run((ctx) =>
      ctx.db.query('device_cursors').withIndex('by_device', (q) => q.eq('workspace_id', workspace)).collect(),
    );
    expect(devices.map((d) => d.device_id)).toEqual([DEVICE_B]);
  });

  test('purged op ids are still recognised by stamp: duplicate while current, superseded once overwritten', async () => {
    const { push, gc } = await setup();
    const first = putNow('a', 1);
    const other = putNow('b', 1);
    await push([first, other]);
    vi.setSystemTime(START + 8 * DAY);
    expect((await gc()).opIdsPurged).toBe(2);
    expect((await push([first])).results[0]).toEqual({ op_id: first.op_id, status: 'duplicate', server_version: 1 });
    await push([putNow('b', 2)]);
    expect((await push([other])).results[0]?.status).toBe('superseded');
  });
});

describe('bounded steps', () => {
  test('a step purges at most GC_BATCH entries and schedules the next step, which finishes', async () => {
    const { t, workspace, push, pull, gc, logVersions } = await setup();
    await push(Array.from({ length: 400 }, (_, i) => putNow(`a${i}`)));
    await push(Array.from({ length: 200 }, (_, i) => putNow(`b${i}`)));
    // All timers fake: the rescheduled step runs only when the test says so.
    vi.useRealTimers();
    vi.useFakeTimers({ now: START + 8 * DAY });
    expect(await gc()).toMatchObject({ entriesPurged: GC_BATCH, opIdsPurged: GC_BATCH, more: true, oldestRetainedVersion: 501 });
    expect((await logVersions())[0]).toBe(501);
    await t.finishAllScheduledFunctions(vi.runAllTimers);
    expect(await logVersions()).toEqual([]);
    expect(await errorOf(pull(599))).toMatchObject({ code: 'cursor_expired', oldest_retained_version: 601 });
    const counter = await t.run((ctx) =>
      ctx.db.query('workspace_counters').withIndex('by_workspace', (q) => q.eq('workspace_id', workspace)).unique(),
    );
    expect(counter).toMatchObject({ server_version: 600, oldest_retained_version: 601 });
  });

  test('a reactive subscriber behind the retained log gets cursor_expired', async () => {
    const { workspace, alice, push, gc } = await setup();
    await push([putNow('a'), putNow('b')]);
    vi.setSystemTime(START + 8 * DAY);
    await gc();
    expect(await errorOf(alice.query(api.sync.watchChanges, { workspace_id: workspace, cursor: 0 }))).toMatchObject({
      code: 'cursor_expired',
      oldest_retained_version: 3,
    });
  });
});

describe('tombstone GC', () => {
  test('old tombstones below the watermark lose their payload but keep their stamp', async () => {
    const { workspace, alice, push, ack, gc } = await setup();
    await push([putNow('a', 1)]);
    const tombstone = { ...del('kv', 'a', { clock: 2, ms: Date.now() - 1000 }), payload: { id: 'a', deleted: true } };
    await push([tombstone]);
    await ack(DEVICE_A, 2);
    vi.setSystemTime(START + 29 * DAY);
    expect((await gc()).tombstonesPurged).toBe(0);
    vi.setSystemTime(START + 31 * DAY);
    await ack(DEVICE_A, 2);
    expect((await gc()).tombstonesPurged).toBe(1);
    const record = await alice.query(api.sync.getRecord, { workspace_id: workspace, table_name: 'kv', pk: 'a' });
    expect(record).toEqual({
      table_name: 'kv',
      pk: 'a',
      payload: null,
      deleted: true,
      clock: 2,
      hlc: tombstone.hlc,
      op_id: tombstone.op_id,
      server_version: 2,
      // the delete's commit time: GC drops the payload, never the stamp
      committed_at: START,
    });
    // A device offline for a month pushes a stale put: it still loses, nothing is resurrected.
    const stale = put('kv', 'a', { back: true }, { clock: 1, ms: Date.now() - 40 * DAY });
    const result = (await push([stale])).results[0]!;
    expect(result).toMatchObject({ status: 'superseded', winner: { deleted: true, payload: null, clock: 2 } });
  });

  test('a tombstone above some active device position keeps its payload', async () => {
    const { workspace, alice, push, ack, gc } = await setup();
    await push([putNow('a', 1)]);
    await push([{ ...del('kv', 'a', { clock: 2, ms: Date.now() - 1000 }), payload: { id: 'a', deleted: true } }]);
    vi.setSystemTime(START + 31 * DAY);
    await ack(DEVICE_A, 1);
    expect((await gc()).tombstonesPurged).toBe(0);
    const record = await alice.query(api.sync.getRecord, { workspace_id: workspace, table_name: 'kv', pk: 'a' });
    expect(record?.payload).toEqual({ id: 'a', deleted: true });
  });
});

describe('cron', () => {
  test('the cron run schedules a collection for every workspace', async () => {
    const { t, workspace, push, logVersions } = await setup();
    const other = await workspaceWith(t, 'bob');
    await push([putNow('a')]);
    await as(t, 'bob').mutation(api.sync.push, { workspace_id: other, ops: [putNow('x')] });
    vi.useRealTimers();
    vi.useFakeTimers({ now: START + 8 * DAY });
    expect(await t.mutation(internal.gc.run, {})).toEqual({ scheduled: 2 });
    await t.finishAllScheduledFunctions(vi.runAllTimers);
    expect(await logVersions()).toEqual([]);
    const otherLog = await t.run((ctx) =>
      ctx.db.query('change_log').withIndex('by_version', (q) => q.eq('workspace_id', other)).collect(),
    );
    expect(otherLog).toEqual([]);
    expect(workspace).not.toBe(other);
  });
});
