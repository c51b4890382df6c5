/**
 * The adapter against the real or3-sync binary, in OR3's shapes: push
 * outcomes and their codes, pull, snapshot and the cursor.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { H3Error } from 'h3';
import { createOr3SyncAdapter } from '../src/adapter.js';
import type { PendingOp, SyncGatewayAdapter } from '../src/or3-types.js';
import { eventFor, startGateway, testUserOf, type TestGateway } from './support/gateway.js';
import { compareRevision, or3Hlc, Or3Device } from './support/or3-device.js';
import type { H3Event } from 'h3';

let gateway: TestGateway;
let adapter: SyncGatewayAdapter<H3Event>;
const owner = 'test:owner';
const event = () => eventFor(owner);

/** A fresh workspace owned by `owner`. */
async function workspace(): Promise<string> {
  const made = await gateway.client.request<{ workspace_id: string }>({ method: 'POST', path: '/v1/workspaces', userId: owner, body: { name: 'w' } });
  return made.workspace_id;
}

async function push(workspaceId: string, ...ops: PendingOp[]) {
  return adapter.push(event(), { scope: { workspaceId }, ops });
}

/** The h3 error a call throws. */
async function failure(call: Promise<unknown>): Promise<H3Error> {
  const error = await call.then(() => undefined, (e: unknown) => e);
  expect(error, 'the call should have failed').toBeDefined();
  return error as H3Error;
}

beforeAll(async () => {
  gateway = await startGateway(['--max-payload-bytes', '4096']);
  adapter = createOr3SyncAdapter({ client: gateway.client, userOf: testUserOf });
});
afterAll(() => gateway?.stop());

describe('push results in OR3 shapes', () => {
  it('an applied op is a success with its server version', async () => {
    const ws = await workspace();
    const device = new Or3Device();
    const result = await push(ws, device.write('messages', 'm1', { id: 'm1', thread_id: 't1', text: 'hi' }));
    expect(result.results).toEqual([{ opId: expect.any(String), success: true, applied: true, serverVersion: 1 }]);
    expect(result.serverVersion).toBe(1);
  });

  it('the same op pushed again is replayed with its original version', async () => {
    const ws = await workspace();
    const op = new Or3Device().write('threads', 't1', { id: 't1', title: 'a' });
    await push(ws, op);
    const again = await push(ws, op);
    expect(again.results[0]).toMatchObject({ opId: op.stamp.opId, success: true, replayed: true, serverVersion: 1 });
  });

  it('an op that loses last-writer-wins succeeds without applying and carries the winner in OR3 spelling', async () => {
    const ws = await workspace();
    const [a, b] = [new Or3Device(), new Or3Device()];
    const first = a.write('threads', 't1', { id: 't1', title: 'first' });
    const second = a.write('threads', 't1', { id: 't1', title: 'second' });
    await push(ws, first, second);
    const stale = b.write('threads', 't1', { id: 't1', title: 'stale' }); // clock 1 < 2
    const [result] = (await push(ws, stale)).results;
    expect(result).toMatchObject({ opId: stale.stamp.opId, success: true, applied: false, serverVersion: 2 });
    expect(result!.winner).toEqual({
      kind: 'put',
      payload: expect.objectContaining({ id: 't1', title: 'second', clock: 2, hlc: second.stamp.hlc }),
      revision: { clock: 2, hlc: second.stamp.hlc, opId: second.stamp.opId },
    });
  });

  it('a put that loses to a delete gets a delete winner', async () => {
    const ws = await workspace();
    const device = new Or3Device();
    await push(ws, device.write('threads', 't1', { id: 't1' }));
    const del = device.write('threads', 't1', null);
    await push(ws, del);
    const stale = new Or3Device().write('threads', 't1', { id: 't1', title: 'late' });
    const [result] = (await push(ws, stale)).results;
    expect(result!.winner).toEqual({ kind: 'delete', revision: { clock: 2, hlc: del.stamp.hlc, opId: del.stamp.opId } });
  });

  it('a tie on clock and hlc is broken by opId, as OR3 orders revisions', async () => {
    const ws = await workspace();
    const device = new Or3Device();
    const hlc = device.nextHlc();
    const low = { ...device.write('threads', 't1', { id: 't1', title: 'low' }), stamp: { deviceId: device.deviceId, opId: '00000000-0000-4000-8000-000000000001', hlc, clock: 1 } };
    const high = { ...low, id: randomUUID(), payload: { id: 't1', title: 'high' }, stamp: { ...low.stamp, opId: 'ffffffff-0000-4000-8000-000000000001' } };
    expect(compareRevision({ clock: 1, hlc, opId: high.stamp.opId }, { clock: 1, hlc, opId: low.stamp.opId })).toBe(1);
    const results = (await push(ws, high, low)).results;
    expect(results[0]).toMatchObject({ success: true, applied: true });
    expect(results[1]).toMatchObject({ success: true, applied: false, winner: { kind: 'put', revision: { opId: high.stamp.opId } } });
    const results2 = (await push(await workspace(), low, high)).results;
    expect(results2.map((r) => r.applied)).toEqual([true, true]);
  });
});

describe('rejections map to OR3 codes', () => {
  const now = Date.now();
  const cases: [string, (device: Or3Device) => PendingOp, string][] = [
    ['unknown_table is VALIDATION_ERROR', (d) => d.write('secrets', 's1', { id: 's1' }), 'VALIDATION_ERROR'],
    ['pk_mismatch is VALIDATION_ERROR', (d) => d.write('threads', 't1', { id: 'other' }), 'VALIDATION_ERROR'],
    ['invalid_pk is VALIDATION_ERROR', (d) => d.write('threads', 't\u0001', { id: 't\u0001' }), 'VALIDATION_ERROR'],
    ['invalid_op is VALIDATION_ERROR', (d) => ({ ...d.write('threads', 't1', { id: 't1' }), operation: 'upsert' as 'put' }), 'VALIDATION_ERROR'],
    ['payload_too_large is OVERSIZED', (d) => d.write('messages', 'm1', { id: 'm1', text: 'x'.repeat(8000) }), 'OVERSIZED'],
    ['clock_skew is retried later (RATE_LIMITED)', (d) => {
      const op = d.write('threads', 't1', { id: 't1' });
      return { ...op, stamp: { ...op.stamp, hlc: or3Hlc(now + 3_600_000, 0, d.deviceId) } };
    }, 'RATE_LIMITED'],
  ];
  for (const [rule, make, code] of cases) {
    it(rule, async () => {
      const [result] = (await push(await workspace(), make(new Or3Device()))).results;
      expect(result).toMatchObject({ success: false, errorCode: code });
      expect(result!.error).toBeTruthy();
    });
  }

  it('op_id_reused (one op id, other content) is CONFLICT, a permanent code', async () => {
    const ws = await workspace();
    const device = new Or3Device();
    const op = device.write('threads', 't1', { id: 't1', title: 'a' });
    await push(ws, op);
    const reused = { ...device.write('threads', 't2', { id: 't2' }), stamp: { ...op.stamp, clock: 1, hlc: device.nextHlc() } };
    const [result] = (await push(ws, reused)).results;
    expect(result).toMatchObject({ success: false, errorCode: 'CONFLICT' });
    expect(result!.error).toMatch(/^op_id_reused/);
  });

  it('an OR3 stamp whose HLC node is not its device is a VALIDATION_ERROR, answered without the gateway', async () => {
    const ws = await workspace();
    const device = new Or3Device();
    const good = device.write('threads', 't1', { id: 't1' });
    const bad = { ...device.write('threads', 't2', { id: 't2' }), stamp: { ...good.stamp, opId: randomUUID(), hlc: or3Hlc(Date.now(), 0, 'deadbeef') } };
    const result = await push(ws, bad, good);
    expect(result.results[0]).toMatchObject({ opId: bad.stamp.opId, success: false, errorCode: 'VALIDATION_ERROR' });
    expect(result.results[1]).toMatchObject({ opId: good.stamp.opId, success: true, applied: true, serverVersion: 1 });
  });

  it('a viewer push is refused as a whole with UNAUTHORIZED and status 403', async () => {
    const ws = await workspace();
    await gateway.client.request({ method: 'PUT', path: `/v1/workspaces/${ws}/members/test:viewer`, userId: owner, body: { role: 'viewer' } });
    const error = await failure(adapter.push(eventFor('test:viewer'), { scope: { workspaceId: ws }, ops: [new Or3Device().write('threads', 't1', { id: 't1' })] }));
    expect(error.statusCode).toBe(403);
    expect(error.data).toMatchObject({ code: 'UNAUTHORIZED', gatewayCode: 'forbidden' });
  });
});

describe('pull, snapshot and the cursor', () => {
  it('a pull maps changes to OR3 stamps and advances the cursor', async () => {
    const ws = await workspace();
    const device = new Or3Device();
    const op = device.write('messages', 'm1', { id: 'm1', text: 'hi', hlc: 'dropped' });
    await push(ws, op);
    const page = await adapter.pull(event(), { scope: { workspaceId: ws }, cursor: 0, limit: 100 });
    expect(page).toMatchObject({ nextCursor: 1, hasMore: false, requiresSnapshot: false });
    expect(page.changes).toEqual([
      {
        serverVersion: 1, tableName: 'messages', pk: 'm1', op: 'put',
        payload: expect.objectContaining({ id: 'm1', text: 'hi', hlc: op.stamp.hlc, clock: 1 }),
        stamp: op.stamp,
      },
    ]);
  });

  it('a cursor the gateway answers 410 cursor_expired for (here: ahead of its log) requires a snapshot', async () => {
    const ws = await workspace();
    const page = await adapter.pull(event(), { scope: { workspaceId: ws }, cursor: 50, limit: 100 });
    expect(page).toMatchObject({ changes: [], requiresSnapshot: true, hasMore: false, nextCursor: 50 });
  });

  it('a pull limited to some tables skips the others and still advances', async () => {
    const ws = await workspace();
    const device = new Or3Device();
    await push(ws, device.write('threads', 't1', { id: 't1' }), device.write('messages', 'm1', { id: 'm1' }), device.write('kv', 'k1', { id: 'k1' }));
    const page = await adapter.pull(event(), { scope: { workspaceId: ws }, cursor: 0, limit: 100, tables: ['messages', 'kv'] });
    expect(page.changes.map((c) => c.pk)).toEqual(['m1', 'k1']);
    expect(page.nextCursor).toBe(3);
  });

  it('a snapshot pages rows and tombstones (with serverDeletedAt) at one watermark', async () => {
    const ws = await workspace();
    const device = new Or3Device();
    const before = Math.floor(Date.now() / 1000);
    await push(ws, ...['a', 'b', 'c', 'd', 'e'].map((pk) => device.write('threads', pk, { id: pk, title: pk })));
    await push(ws, device.write('threads', 'b', null), device.write('threads', 'd', null));
    const first = await adapter.snapshot!(event(), { scope: { workspaceId: ws }, pageSize: 2 });
    await push(ws, device.write('threads', 'f', { id: 'f' })); // after the watermark
    const pages = [first];
    while (pages.at(-1)!.nextPageToken) {
      pages.push(await adapter.snapshot!(event(), { scope: { workspaceId: ws }, pageSize: 2, pageToken: pages.at(-1)!.nextPageToken! }));
    }
    expect(new Set(pages.map((p) => `${p.snapshotId}/${p.highWatermark}`))).toEqual(new Set(['7/7']));
    const items = pages.flatMap((p) => p.items).filter((i) => i.pk !== 'f');
    expect(items.map((i) => `${i.pk}:${i.kind}`)).toEqual(['a:row', 'b:tombstone', 'c:row', 'd:tombstone', 'e:row']);
    for (const item of items) {
      if (item.kind === 'tombstone') expect(item.serverDeletedAt).toBeGreaterThanOrEqual(before);
      else expect(item.payload).toMatchObject({ id: item.pk, hlc: item.revision.hlc });
    }
  });

  it('a snapshot limited to some tables holds only those', async () => {
    const ws = await workspace();
    const device = new Or3Device();
    await push(ws, device.write('threads', 't1', { id: 't1' }), device.write('kv', 'k1', { id: 'k1' }));
    const page = await adapter.snapshot!(event(), { scope: { workspaceId: ws }, pageSize: 100, tables: ['kv'] });
    expect(page.items.map((i) => i.pk)).toEqual(['k1']);
  });

  it('updateCursor records the position; past the head is 400, backwards is 409', async () => {
    const ws = await workspace();
    const device = new Or3Device();
    await push(ws, device.write('threads', 't1', { id: 't1' }), device.write('threads', 't2', { id: 't2' }));
    const scope = { workspaceId: ws };
    await adapter.updateCursor(event(), { scope, deviceId: device.deviceId, version: 2 });
    await adapter.updateCursor(event(), { scope, deviceId: device.deviceId, version: 2 });
    expect((await failure(adapter.updateCursor(event(), { scope, deviceId: device.deviceId, version: 3 }))).statusCode).toBe(400);
    const regression = await failure(adapter.updateCursor(event(), { scope, deviceId: device.deviceId, version: 1 }));
    expect(regression.statusCode).toBe(409);
    expect(regression.data).toMatchObject({ code: 'CONFLICT', gatewayCode: 'cursor_regression' });
  });

  it('the GC calls succeed and leave GC to the gateway', async () => {
    const ws = await workspace();
    await expect(adapter.gcTombstones!(event(), { scope: { workspaceId: ws }, retentionSeconds: 0 })).resolves.toBeUndefined();
    await expect(adapter.gcChangeLog!(event(), { scope: { workspaceId: ws }, retentionSeconds: 0 })).resolves.toBeUndefined();
    expect(adapter.capabilities).toEqual({ snapshotBootstrap: 'snapshot-v1', historyRetention: 'snapshot-v1' });
  });
});
