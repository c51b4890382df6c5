/**
 * Realtime delivery end to end: engines on fake-indexeddb subscribed to the
 * real or3-sync server over a WebSocket (the `ws` package, as Node 20 has no
 * global one) or its event stream, with the polling interval set far beyond
 * the tests' deadlines so that only the subscription can deliver.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { SyncEngine } from '../src/engine.js';
import { GatewayProvider, type GatewayProviderOptions } from '../src/gateway/gateway-provider.js';
import type { RealtimeState } from '../src/provider.js';
import { makeDevice } from './support/devices.js';
import { startServer, type TestServer } from './support/server.js';

let server: TestServer;
const opened: SyncEngine[] = [];
const providers: GatewayProvider[] = [];

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.stop();
});
afterEach(async () => {
  for (const engine of opened.splice(0)) await engine.close();
  for (const provider of providers.splice(0)) provider.dispose();
});

/** Longer than any deadline here: a change that arrives came through the subscription. */
const NO_POLLING_MS = 120_000;

/** A device whose requests, sockets and frames the test can see. */
interface Device {
  engine: SyncEngine;
  provider: GatewayProvider;
  /** Paths of every HTTP request, in order. */
  requests: string[];
  sockets: ObservedSocket[];
  states: RealtimeState[];
}

/** The `ws` WebSocket, keeping what it sent and received. */
class ObservedSocket extends WebSocket {
  readonly received: { type: string; code?: string; from?: number; to?: number }[] = [];
  readonly sentFrames: { type: string; cursor?: number; ops?: { op_id: string }[] }[] = [];

  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols);
    this.on('message', (data) => this.received.push(JSON.parse(String(data))));
  }

  override send(data: string): void {
    this.sentFrames.push(JSON.parse(data));
    super.send(data);
  }
}

async function device(workspaceId: string, userId: string, options: Partial<GatewayProviderOptions> = {}): Promise<Device> {
  const token = await server.token(userId);
  const d = { requests: [], sockets: [], states: [] } as unknown as Device;
  d.provider = new GatewayProvider({
    baseUrl: server.baseUrl,
    getToken: () => token,
    pollIntervalMs: NO_POLLING_MS,
    reconnectBackoff: { baseMs: 50, maxMs: 400 },
    WebSocket: class extends ObservedSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        d.sockets.push(this);
      }
    },
    fetch: (input, init) => {
      d.requests.push(new URL(String(input)).pathname);
      return fetch(input, init);
    },
    onRealtimeState: (state) => d.states.push(state),
    ...options,
  });
  providers.push(d.provider);
  d.engine = await makeDevice(workspaceId, d.provider).open();
  opened.push(d.engine);
  return d;
}

async function sharedWorkspace(): Promise<string> {
  const ownerToken = await server.token('alice');
  const workspaceId = await server.createWorkspace(ownerToken);
  await server.addMember(ownerToken, workspaceId, 'bob', 'editor');
  return workspaceId;
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Starts the engine and waits until its subscription is connected over `transport`. */
async function startSubscribed(d: Device, transport: RealtimeState['transport']): Promise<void> {
  d.engine.start();
  await waitFor(() => d.states.some((s) => s.connected && s.transport === transport));
}

const changesRequests = (paths: string[]) => paths.filter((p) => p.endsWith('/changes'));

async function threadIds(engine: SyncEngine): Promise<string[]> {
  return ((await engine.db.table('threads').toArray()) as { id: string }[]).map((t) => t.id).sort();
}

describe('subscribe against the server', () => {
  it('a change pushed by one device reaches the other over its WebSocket, with no polling', async () => {
    const workspaceId = await sharedWorkspace();
    const alice = await device(workspaceId, 'alice');
    const bob = await device(workspaceId, 'bob');
    alice.engine.start();
    await startSubscribed(bob, 'websocket');
    const before = bob.requests.length;

    const started = Date.now();
    await alice.engine.db.table('threads').put({ id: 'live', title: 'hello' });
    await waitFor(async () => (await bob.engine.db.table('threads').get('live'))?.title === 'hello');
    const elapsed = Date.now() - started;

    expect(changesRequests(bob.requests.slice(before))).toEqual([]);
    expect(elapsed).toBeLessThan(3000);
    expect(bob.sockets).toHaveLength(1);
    expect(bob.sockets[0]!.protocol).toBe('or3-sync.v1+push');
    expect(bob.sockets[0]!.received.some((f) => f.type === 'changes')).toBe(true);
    expect(await bob.engine.db.table('_or3sync_state').get('cursor:*')).toMatchObject({ value: 1 });
  });

  it('after the server restarts, the subscription reconnects from its cursor and misses nothing', async () => {
    const workspaceId = await sharedWorkspace();
    const alice = await device(workspaceId, 'alice');
    const bob = await device(workspaceId, 'bob', { fallbackAfterFailures: 1000 });
    alice.engine.start();
    await startSubscribed(bob, 'websocket');
    const before = bob.requests.length;

    await alice.engine.db.table('threads').bulkPut([{ id: 'r1' }, { id: 'r2' }, { id: 'r3' }]);
    await waitFor(async () => (await threadIds(bob.engine)).length === 3);
    const cursorBefore = (await bob.engine.db.table('_or3sync_state').get('cursor:*'))?.value as number;

    await server.restart(async () => {
      // Written while the server is down: pushed once it is back.
      await alice.engine.db.table('threads').bulkPut([{ id: 'r4' }, { id: 'r5' }]);
    });
    await alice.engine.db.table('threads').put({ id: 'r6' });
    await waitFor(async () => (await threadIds(bob.engine)).length === 6, 15_000);

    expect(await threadIds(bob.engine)).toEqual(['r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
    expect(bob.sockets[0]!.received.some((f) => f.type === 'error' && f.code === 'shutting_down')).toBe(true);
    const resumed = bob.sockets.at(-1)!;
    expect(bob.sockets.length).toBeGreaterThan(1);
    expect(resumed.sentFrames[0]).toMatchObject({ type: 'hello', cursor: cursorBefore });
    expect(changesRequests(bob.requests.slice(before))).toEqual([]);
    expect(await bob.engine.db.table('_or3sync_outbox').count()).toBe(0);
  });

  it('a subscriber that falls behind is poked, pulls, and then receives live changes again', async () => {
    const workspaceId = await sharedWorkspace();
    const ownerToken = await server.token('alice');
    const bob = await device(workspaceId, 'bob');
    await startSubscribed(bob, 'websocket');
    const socket = bob.sockets[0]!;
    // Stop reading: the server's writes to this socket block, and its queue of commits overflows.
    socket.pause();
    const push = (pk: string, payload: Record<string, unknown>, table = 'posts') =>
      server.api(ownerToken, 'POST', `/v1/workspaces/${workspaceId}/push`, {
        ops: [
          {
            op_id: crypto.randomUUID(),
            table_name: table,
            operation: 'put',
            pk,
            payload: { id: pk, ...payload },
            clock: 1,
            hlc: `${Date.now()}-000000-cccccccccccccccc`,
            device_id: 'cccccccccccccccc',
          },
        ],
      });
    const blob = 'x'.repeat(900_000);
    for (let i = 0; i < 24; i++) expect((await push(`big${i}`, { blob })).status).toBe(200);
    for (let i = 0; i < 300; i++) expect((await push(`small${i}`, {})).status).toBe(200);
    expect((await push('behind', { title: 'sent while behind' }, 'threads')).status).toBe(200);
    const pullsBefore = changesRequests(bob.requests).length;
    socket.resume();

    await waitFor(() => socket.received.some((f) => f.type === 'poke'), 30_000);
    await waitFor(async () => (await bob.engine.db.table('threads').get('behind')) !== undefined, 30_000);
    expect(changesRequests(bob.requests).length).toBeGreaterThan(pullsBefore);
    await waitFor(() => socket.sentFrames.filter((f) => f.type === 'hello').length === 2);

    const pulled = changesRequests(bob.requests).length;
    expect((await push('after', { title: 'live again' }, 'threads')).status).toBe(200);
    await waitFor(async () => (await bob.engine.db.table('threads').get('after')) !== undefined);
    expect(changesRequests(bob.requests).length).toBe(pulled);
    expect(bob.sockets).toHaveLength(1);
  }, 120_000);

  it('without WebSocket the event stream delivers, with no polling', async () => {
    const workspaceId = await sharedWorkspace();
    const alice = await device(workspaceId, 'alice');
    const bob = await device(workspaceId, 'bob', { WebSocket: null });
    alice.engine.start();
    await startSubscribed(bob, 'sse');
    const before = bob.requests.length;

    await alice.engine.db.table('threads').put({ id: 'streamed', title: 'over sse' });
    await alice.engine.db.table('threads').update('streamed', { title: 'over sse, twice' });
    await waitFor(async () => (await bob.engine.db.table('threads').get('streamed'))?.title === 'over sse, twice');

    expect(changesRequests(bob.requests.slice(before))).toEqual([]);
    expect(bob.requests.some((p) => p.endsWith('/events'))).toBe(true);
    expect(bob.sockets).toHaveLength(0);
  });
});

describe('pushes on the subscription socket', () => {
  const pushRequests = (paths: string[]) => paths.filter((p) => p.endsWith('/push'));

  it('a write goes to the server on the open WebSocket, not over HTTP, and reaches the other device', async () => {
    const workspaceId = await sharedWorkspace();
    const alice = await device(workspaceId, 'alice');
    const bob = await device(workspaceId, 'bob');
    await startSubscribed(alice, 'websocket');
    await startSubscribed(bob, 'websocket');
    const before = alice.requests.length;

    await alice.engine.db.table('threads').put({ id: 'over-socket', title: 'hello' });
    await waitFor(async () => (await bob.engine.db.table('threads').get('over-socket'))?.title === 'hello');
    await waitFor(async () => (await alice.engine.db.table('_or3sync_outbox').count()) === 0);

    const socket = alice.sockets.at(-1)!;
    expect(socket.protocol).toBe('or3-sync.v1+push');
    expect(socket.sentFrames.filter((f) => f.type === 'push').map((f) => f.ops?.map((o) => o.op_id).length)).toEqual([1]);
    expect(socket.received.some((f) => f.type === 'push_result')).toBe(true);
    expect(pushRequests(alice.requests.slice(before))).toEqual([]);
  });

  it('a push whose socket closes before its answer is retried with the same op id; the op stays until an answer settles it', async () => {
    const workspaceId = await sharedWorkspace();
    let lost: string[] | null = null;
    const sockets: ObservedSocket[] = [];
    /** Drops the first push frame unsent and closes its socket: the push is left with no answer. */
    class LosingSocket extends ObservedSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        sockets.push(this);
      }
      override send(data: string): void {
        const frame = JSON.parse(data) as { type: string; ops?: { op_id: string }[] };
        if (frame.type === 'push' && lost === null) {
          lost = frame.ops!.map((op) => op.op_id);
          this.close();
          return;
        }
        super.send(data);
      }
    }
    const alice = await device(workspaceId, 'alice', { WebSocket: LosingSocket });
    const bob = await device(workspaceId, 'bob');
    alice.engine.start();
    await waitFor(() => alice.states.some((s) => s.connected && s.transport === 'websocket'));
    await startSubscribed(bob, 'websocket');

    await alice.engine.db.table('threads').put({ id: 'kept', title: 'written once' });
    await waitFor(() => lost !== null);
    await waitFor(async () => (await bob.engine.db.table('threads').get('kept'))?.title === 'written once');
    await waitFor(async () => (await alice.engine.db.table('_or3sync_outbox').count()) === 0);

    // The server never saw the lost frame: what it holds came from the retry, under the same op id.
    const token = await server.token('alice');
    const { body: record } = await server.api<{ op_id: string }>(token, 'GET', `/v1/workspaces/${workspaceId}/records/threads/kept`);
    expect(lost).toHaveLength(1);
    expect(record.op_id).toBe(lost![0]);
    expect(sockets[0]!.readyState).toBe(WebSocket.CLOSED);
    expect(alice.engine.status.failed).toBe(0);
  });
});
