/**
 * Retention from the client's side (issue 6), against the real binary: GC is
 * run with `or3-sync gc --as-of-ms`, which judges ages as if it were that
 * time, so days pass without waiting for them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PendingOpRow } from '@or3/sync-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AckLedger } from '../src/ack-ledger.js';
import { decision, FaultProxy, PASS_ALL, type FaultSchedule } from '../src/fault-proxy.js';
import { GatewayProcess, runGc } from '../src/gateway-process.js';
import { checkConvergence } from '../src/invariants.js';
import { readServerState } from '../src/server-state.js';
import { deleteMode, SimulatedDevice, SYNCED_TABLES } from '../src/simulated-device.js';

const DAY = 86_400_000;
const DEVICE_TTL = 30 * DAY; // the protocol's default, which the gateway runs with here

interface World {
  gateway: GatewayProcess;
  proxy: FaultProxy;
  ledger: AckLedger;
  ownerToken: string;
  workspaceId: string;
  a: SimulatedDevice;
  b: SimulatedDevice;
}

let dir: string;
let world: World;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'or3-retention-'));
  const gateway = await GatewayProcess.start({ database: `sqlite://${dir}/r.db`, extraArgs: ['--gc-interval-secs', '0'], cwd: dir });
  const proxy = await FaultProxy.start({ targetPort: gateway.port });
  const ownerToken = await gateway.token('owner');
  const workspaceId = (await gateway.api<{ workspace_id: string }>(ownerToken, 'POST', '/v1/workspaces', { name: 'retention' })).body
    .workspace_id;
  await gateway.api(ownerToken, 'PUT', `/v1/workspaces/${workspaceId}/members/bob`, { role: 'editor' });
  const ledger = new AckLedger();
  const device = async (name: string, user: string) => {
    const d = new SimulatedDevice({ name, workspaceId, baseUrl: proxy.url, token: await gateway.token(user), ledger, proxy });
    await d.open(false); // runs only when the test says sync()
    return d;
  };
  world = { gateway, proxy, ledger, ownerToken, workspaceId, a: await device('a', 'owner'), b: await device('b', 'bob') };
});

afterEach(async () => {
  for (const d of [world.a, world.b]) await d.close();
  await world.proxy.close();
  await world.gateway.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `sync()` and insists it succeeded. */
async function synced(device: SimulatedDevice): Promise<void> {
  const run = await device.engine.sync();
  expect(run.error, `${device.name} sync`).toBeNull();
}

/** A device reports its cursor on its next pull: sync twice so the position is its head. */
async function syncedAndReported(device: SimulatedDevice): Promise<void> {
  await synced(device);
  await synced(device);
}

/** Positions are buffered and written about once a second. */
const positionsFlushed = () => new Promise((resolve) => setTimeout(resolve, 1500));

async function expectConverged(): Promise<void> {
  const { gateway, ownerToken, workspaceId, ledger, a, b } = world;
  const server = await readServerState(gateway, ownerToken, workspaceId);
  const tables = Object.fromEntries(Object.keys(SYNCED_TABLES).map((t) => [t, { deletes: deleteMode(t), primaryKey: 'id' }]));
  const violations = checkConvergence({
    devices: [await a.state(), await b.state()],
    server,
    sent: ledger.sent,
    received: ledger.received,
    tables,
  });
  expect(violations).toEqual([]);
}

/** Pushes of `lane` get 503 (an overloaded node) while pulls pass. */
function pushesUnavailableFor(lane: string): FaultSchedule {
  return {
    decideRequest: (info) => decision(info.lane === lane && info.path.endsWith('/push') ? 'unavailable' : 'pass'),
    decideSocket: () => ({ cutAfterMs: null }),
  };
}

describe('retention, seen from the client', () => {
  it('a device idle past device_ttl stops holding GC back, then gets cursor_expired and recovers by rescan with its pending writes kept', async () => {
    const { gateway, proxy, a, b } = world;
    await a.engine.db.table('threads').bulkPut([
      { id: 't1', title: 'first' },
      { id: 't2', title: 'second' },
    ]);
    await a.engine.db.table('kv').put({ id: 'k1', value: 1 });
    await syncedAndReported(a);
    await syncedAndReported(b);
    const bCursor = (await b.engine.stats()).cursor!;
    const bLastSeen = Date.now();

    // B goes idle with writes it has not pushed; A goes on.
    await b.engine.db.table('threads').update('t1', { title: 'b, while idle' });
    await b.engine.db.table('threads').put({ id: 't3', title: 'b made this' });
    await b.engine.db.table('kv').delete('k1');
    await new Promise((resolve) => setTimeout(resolve, 2100));
    await a.engine.db.table('threads').update('t2', { title: 'second, edited by a' });
    await a.engine.db.table('threads').put({ id: 't4', title: 'a made this' });
    await syncedAndReported(a);
    const head = (await a.engine.stats()).cursor!;
    expect(head).toBeGreaterThan(bCursor);
    await positionsFlushed();

    // Just inside device_ttl, B still holds the log back at its cursor.
    const held = await runGc(gateway.database, bLastSeen + DEVICE_TTL - 500);
    expect(held[0]!.oldest_retained_version).toBe(bCursor + 1);
    // Just past it (A was seen 2 s later, so A still counts), B no longer does.
    const released = await runGc(gateway.database, bLastSeen + DEVICE_TTL + 1000);
    expect(released[0]!.oldest_retained_version).toBe(head + 1);
    expect(released[0]!.log_entries_purged).toBe(head - bCursor);

    // B comes back; its pushes hit an overloaded node, so its writes are still pending when its pull meets 410.
    const rescans: string[] = [];
    b.engine.on('sync.rescan:action', (e) => e.phase === 'started' && rescans.push(e.reason));
    proxy.setSchedule(pushesUnavailableFor('b'));
    const first = await b.engine.sync();
    expect(first.error).toBe('store_unavailable');
    expect(rescans).toEqual(['cursor_expired']);
    const pending = (await b.engine.db.table<PendingOpRow>('_or3sync_outbox').toArray()).map((op) => `${op.operation} ${op.table_name}/${op.pk}`);
    expect(pending).toEqual(['put threads/t1', 'put threads/t3', 'delete kv/k1']);
    // The rescan brought A's writes and kept B's own over them.
    const threads = b.engine.db.table('threads');
    expect(await threads.get('t1')).toMatchObject({ title: 'b, while idle' });
    expect(await threads.get('t2')).toMatchObject({ title: 'second, edited by a' });
    expect(await threads.get('t3')).toMatchObject({ title: 'b made this' });
    expect(await threads.get('t4')).toMatchObject({ title: 'a made this' });
    expect(await b.engine.db.table('kv').get('k1')).toBeUndefined();
    expect((await b.engine.stats()).cursor).toBe(head);

    // The node recovers: B's writes go out and everyone converges.
    proxy.setSchedule(PASS_ALL);
    await syncedAndReported(b);
    await syncedAndReported(a);
    expect(await a.engine.db.table('threads').get('t1')).toMatchObject({ title: 'b, while idle' });
    expect(await a.engine.db.table('kv').get('k1')).toBeUndefined();
    const bAcks = world.ledger.acknowledged().filter((r) => r.device === 'b').map((r) => `${r.op.table_name}/${r.op.pk}`);
    expect(bAcks.sort()).toEqual(['kv/k1', 'threads/t1', 'threads/t3']);
    await expectConverged();
  });

  it('a device offline far longer than every retention window comes back with stale edits of records deleted meanwhile: they are superseded, nothing is resurrected, its newer edits still apply', async () => {
    const { gateway, a, b } = world;
    await a.engine.db.table('threads').bulkPut([
      { id: 't1', title: 'one' },
      { id: 't2', title: 'two' },
      { id: 't3', title: 'three' },
    ]);
    await a.engine.db.table('kv').put({ id: 'k1', value: 'a' });
    await syncedAndReported(a);
    await syncedAndReported(b);

    // B, offline, edits records that A is about to delete, edits one A leaves alone, and makes a new one.
    // Its pushes are refused at the network until it comes back, so no early push can race A's deletes.
    world.proxy.setSchedule(pushesUnavailableFor('b'));
    await b.engine.db.table('threads').update('t1', { title: 'one, edited offline' });
    await b.engine.db.table('threads').update('t2', { title: 'two, edited offline' });
    await b.engine.db.table('kv').put({ id: 'k1', value: 'b, offline' });
    await b.engine.db.table('threads').update('t3', { title: 'three, edited offline' });
    await b.engine.db.table('threads').put({ id: 't9', title: 'new, made offline' });

    // Later, A deletes them (t1 after an edit of its own, so its delete also has the higher clock).
    await new Promise((resolve) => setTimeout(resolve, 20));
    await a.engine.db.table('threads').update('t1', { title: 'one, edited by a' });
    await a.engine.db.table('threads').delete('t1');
    // An edit before each delete gives A's tombstones the higher clock, so the
    // outcome never hangs on which device's HLC happens to read later.
    await a.engine.db.table('threads').update('t2', { title: 'two, edited by a' });
    await a.engine.db.table('threads').delete('t2');
    await a.engine.db.table('kv').put({ id: 'k1', value: 'a, again' });
    await a.engine.db.table('kv').delete('k1');
    await syncedAndReported(a);
    const head = (await a.engine.stats()).cursor!;
    await positionsFlushed();

    // A year later: past device_ttl, min_retention and tombstone_retention.
    const [gc] = await runGc(gateway.database, Date.now() + 365 * DAY);
    expect(gc!.oldest_retained_version).toBe(head + 1);
    expect(gc!.tombstone_payloads_purged).toBe(3);

    const statuses = () =>
      Object.fromEntries(
        world.ledger.received
          .filter((r) => r.device === 'b')
          .map((r) => [`${r.op.table_name}/${r.op.pk}`, r.result.status === 'superseded' ? `superseded by deleted=${r.result.winner.deleted}` : r.result.status]),
      );
    world.proxy.setSchedule(PASS_ALL);
    const run = await b.engine.sync();
    expect(run.error).toBeNull();
    expect(statuses()).toEqual({
      'threads/t1': 'superseded by deleted=true',
      'threads/t2': 'superseded by deleted=true',
      'kv/k1': 'superseded by deleted=true',
      'threads/t3': 'applied',
      'threads/t9': 'applied',
    });
    const threads = b.engine.db.table('threads');
    expect(await threads.get('t1')).toMatchObject({ deleted: true });
    expect(await threads.get('t2')).toMatchObject({ deleted: true });
    expect(await b.engine.db.table('kv').get('k1')).toBeUndefined();
    expect(await threads.get('t3')).toMatchObject({ title: 'three, edited offline', deleted: false });

    await syncedAndReported(b);
    await syncedAndReported(a);
    expect(await a.engine.db.table('threads').get('t9')).toMatchObject({ title: 'new, made offline' });
    expect(await a.engine.db.table('threads').get('t3')).toMatchObject({ title: 'three, edited offline' });
    const server = await readServerState(gateway, world.ownerToken, world.workspaceId);
    const deleted = server.items.filter((i) => i.deleted).map((i) => `${i.table_name}/${i.pk}`).sort();
    expect(deleted).toEqual(['kv/k1', 'threads/t1', 'threads/t2']);
    await expectConverged();
  });
});
