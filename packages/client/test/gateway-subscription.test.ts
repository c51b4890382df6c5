/**
 * GatewayProvider.subscribe against scripted transports: a fake WebSocket
 * and a fake fetch, so every frame sequence the server can send is covered
 * without a server.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EventStreamParser } from '../src/gateway/event-stream.js';
import { GatewayProvider, type GatewayProviderOptions } from '../src/gateway/gateway-provider.js';
import type { WebSocketLike } from '../src/gateway/websocket.js';
import type { RealtimeState } from '../src/provider.js';
import type { ChangesBatch, SyncProviderError } from '../src/provider.js';
import { tokenExpiry } from '../src/gateway/token-claims.js';
import type { Change, ChangesPage, PushOp, PushResponse } from '@or3/sync-protocol';

const scope = { workspaceId: 'w1', deviceId: 'aaaaaaaaaaaaaaaa', projectId: null };

function change(version: number, pk = `r${version}`): Change {
  return {
    server_version: version,
    table_name: 'threads',
    pk,
    operation: 'put',
    payload: { id: pk },
    clock: 1,
    hlc: `1732540000000-${String(version).padStart(6, '0')}-bbbbbbbbbbbbbbbb`,
    op_id: `op-${version}`,
    device_id: 'bbbbbbbbbbbbbbbb',
  };
}

function changesFrame(from: number, to: number, versions: number[] = range(from + 1, to)) {
  return { type: 'changes', from, to, changes: versions.map((v) => change(v)) };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

/** A JWT-shaped token (unsigned) expiring at `exp` seconds. */
function jwt(exp: number, n = 0): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256' })}.${part({ sub: 'u', exp, n })}.sig`;
}

/** A WebSocket double: the test plays the server. */
class FakeSocket implements WebSocketLike {
  readyState = 0;
  /** The subprotocol the server chose ('' for none, as before pushes on the socket). */
  protocol = '';
  sent: Record<string, unknown>[] = [];
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: unknown) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocols: string | string[] | undefined,
    refuse: boolean,
  ) {
    setTimeout(() => (refuse ? this.refuse() : this.accept()), 0);
  }

  private accept() {
    if (this.readyState !== 0) return;
    this.readyState = 1;
    this.onopen?.({});
  }

  private refuse() {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({ code: 1006 });
  }

  send(data: string) {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }

  close() {
    if (this.readyState === 3) return;
    this.readyState = 3;
    setTimeout(() => this.onclose?.({ code: 1000 }), 0);
  }

  /** The server sends a frame. */
  frame(value: unknown) {
    this.onmessage?.({ data: JSON.stringify(value) });
  }

  /** The server closes the connection. */
  drop() {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code: 1001 });
  }

  hellos() {
    return this.sent.filter((f) => f.type === 'hello');
  }
}

interface Harness {
  provider: GatewayProvider;
  sockets: FakeSocket[];
  /** Sockets still to refuse before one connects. */
  refusals: number;
  /** The subprotocol the fake server chooses. */
  serverProtocol: string;
  pulls: number[];
  /** The log `changes` serves. */
  log: Change[];
  batches: ChangesBatch[];
  errors: SyncProviderError[];
  states: RealtimeState[];
  /** The engine's durable cursor, as `appliedCursor` reports it. */
  applied: number;
  subscribe(cursor: number): () => void;
}

const providers: GatewayProvider[] = [];
afterEach(() => {
  for (const provider of providers.splice(0)) provider.dispose();
});

function harness(
  options: Partial<GatewayProviderOptions> = {},
  wrapFetch: (pulls: typeof fetch) => typeof fetch = (pulls) => pulls,
): Harness {
  const h = { sockets: [], refusals: 0, serverProtocol: '', pulls: [], log: [], batches: [], errors: [], states: [], applied: 0 } as unknown as Harness;
  const Socket = class extends FakeSocket {
    constructor(url: string, protocols?: string | string[]) {
      const refuse = h.refusals > 0;
      if (refuse) h.refusals -= 1;
      super(url, protocols, refuse);
      this.protocol = h.serverProtocol;
      h.sockets.push(this);
    }
  };
  const pullFetch: typeof fetch = async (input) => {
    const url = new URL(String(input));
    if (!url.pathname.endsWith('/changes')) throw new TypeError(`unexpected ${url.pathname}`);
    const cursor = Number(url.searchParams.get('cursor'));
    h.pulls.push(cursor);
    const changes = h.log.filter((c) => c.server_version > cursor);
    const page: ChangesPage = { changes, cursor: changes.at(-1)?.server_version ?? cursor, has_more: false };
    return new Response(JSON.stringify(page), { status: 200, headers: { 'content-type': 'application/json' } });
  };
  h.provider = new GatewayProvider({
    baseUrl: 'http://gw.test',
    getToken: () => 'tok',
    WebSocket: Socket,
    fetch: wrapFetch(pullFetch),
    reconnectBackoff: { baseMs: 5, maxMs: 20 },
    pollIntervalMs: 10,
    onRealtimeState: (state) => h.states.push(state),
    ...options,
  });
  providers.push(h.provider);
  h.subscribe = (cursor) =>
    h.provider.subscribe(
      scope,
      cursor,
      async (batch) => {
        h.batches.push(batch);
        h.applied = batch.to;
      },
      (error) => h.errors.push(error),
      { appliedCursor: async () => h.applied },
    );
  return h;
}

async function waitFor(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

const spans = (h: Harness) => h.batches.map((b) => [b.from, b.to, b.changes.map((c) => c.server_version)]);

describe('subscribe over a WebSocket', () => {
  it('offers the subprotocols, says hello from the applied cursor and hands chained frames to the engine', async () => {
    const h = harness();
    h.applied = 4;
    h.subscribe(4);
    await waitFor(() => h.sockets[0]?.hellos().length === 1);
    const socket = h.sockets[0]!;
    expect(socket.url).toBe('ws://gw.test/v1/workspaces/w1/subscribe');
    expect(socket.protocols).toEqual(['or3-sync.v1', 'or3-sync.v1+push', 'bearer.tok']);
    expect(socket.hellos()[0]).toEqual({ type: 'hello', cursor: 4, device_id: scope.deviceId, project_id: null });
    socket.frame(changesFrame(4, 6));
    socket.frame(changesFrame(6, 7));
    await waitFor(() => h.batches.length === 2);
    expect(spans(h)).toEqual([
      [4, 6, [5, 6]],
      [6, 7, [7]],
    ]);
    expect(h.pulls).toEqual([]);
    expect(h.states.at(-1)).toEqual({ workspaceId: 'w1', transport: 'websocket', connected: true });
  });

  it('a frame that does not follow the last one makes it pull the gap first', async () => {
    const h = harness();
    h.log = range(1, 9).map((v) => change(v));
    h.subscribe(0);
    await waitFor(() => h.sockets[0]?.hellos().length === 1);
    h.sockets[0]!.frame(changesFrame(0, 2));
    h.sockets[0]!.frame(changesFrame(5, 9)); // 3..5 went missing
    await waitFor(() => h.applied === 9);
    expect(h.pulls).toEqual([2]);
    expect(spans(h)).toEqual([
      [0, 2, [1, 2]],
      [2, 9, [3, 4, 5, 6, 7, 8, 9]],
    ]);
  });

  it('frames it has already applied are skipped, and an overlapping one is trimmed', async () => {
    const h = harness();
    h.applied = 5;
    h.subscribe(5);
    await waitFor(() => h.sockets[0]?.hellos().length === 1);
    h.sockets[0]!.frame(changesFrame(2, 4));
    h.sockets[0]!.frame(changesFrame(4, 7));
    await waitFor(() => h.applied === 7);
    expect(spans(h)).toEqual([[5, 7, [6, 7]]]);
  });

  it('a poke makes it pull, then say hello again from the applied cursor', async () => {
    const h = harness();
    h.log = range(1, 20).map((v) => change(v));
    h.subscribe(0);
    await waitFor(() => h.sockets[0]?.hellos().length === 1);
    h.sockets[0]!.frame(changesFrame(0, 3));
    h.sockets[0]!.frame({ type: 'poke', server_version: 20 });
    await waitFor(() => h.sockets[0]!.hellos().length === 2);
    expect(h.pulls).toEqual([3]);
    expect(h.sockets[0]!.hellos()[1]).toMatchObject({ cursor: 20 });
    h.sockets[0]!.frame(changesFrame(20, 21));
    await waitFor(() => h.applied === 21);
    expect(h.sockets).toHaveLength(1);
  });

  it('reconnects after a drop and resumes from what the engine applied, not from what it received', async () => {
    const h = harness();
    h.subscribe(0);
    await waitFor(() => h.sockets[0]?.hellos().length === 1);
    h.sockets[0]!.frame(changesFrame(0, 5));
    await waitFor(() => h.applied === 5);
    // The engine rolled back (say its transaction failed after a rescan): it holds 3.
    h.applied = 3;
    h.sockets[0]!.frame({ type: 'error', code: 'shutting_down', message: 'bye' });
    await waitFor(() => h.sockets[1]?.hellos().length === 1);
    expect(h.sockets[1]!.hellos()[0]).toMatchObject({ cursor: 3 });
  });

  it('cursor_expired ends the subscription with a 410 for the engine to rescan', async () => {
    const h = harness();
    h.subscribe(0);
    await waitFor(() => h.sockets[0]?.hellos().length === 1);
    h.sockets[0]!.frame({ type: 'error', code: 'cursor_expired', message: 'old', oldest_retained_version: 9 });
    await waitFor(() => h.errors.length === 1);
    expect(h.errors[0]).toMatchObject({ code: 'cursor_expired', status: 410, oldestRetainedVersion: 9 });
    await new Promise((r) => setTimeout(r, 30));
    expect(h.sockets).toHaveLength(1);
  });

  it('forbidden (membership revoked) ends the subscription with a 403', async () => {
    const h = harness();
    h.subscribe(0);
    await waitFor(() => h.sockets[0]?.hellos().length === 1);
    h.sockets[0]!.frame({ type: 'error', code: 'forbidden', message: 'revoked' });
    await waitFor(() => h.errors.length === 1);
    expect(h.errors[0]).toMatchObject({ code: 'forbidden', status: 403 });
  });

  it('refreshes the token with an auth frame before it expires', async () => {
    const now = Math.floor(Date.now() / 1000);
    const tokens = [jwt(now + 2, 1), jwt(now + 3600, 2)];
    const asked: boolean[] = [];
    const h = harness({
      getToken: ({ forceRefresh }) => {
        asked.push(forceRefresh);
        return tokens.length > 1 ? tokens.shift()! : tokens[0]!;
      },
      tokenRefreshLeadMs: 1900,
    });
    h.subscribe(0);
    await waitFor(() => h.sockets[0]?.sent.some((f) => f.type === 'auth') === true);
    const auth = h.sockets[0]!.sent.find((f) => f.type === 'auth')!;
    expect(tokenExpiry(auth.token as string)).toBe(now + 3600);
    expect(h.sockets).toHaveLength(1);
  });

  it('token_expired reconnects at once with a token fetched anew', async () => {
    const asked: boolean[] = [];
    const h = harness({
      getToken: ({ forceRefresh }) => {
        asked.push(forceRefresh);
        return forceRefresh ? 'fresh' : 'stale';
      },
    });
    h.subscribe(0);
    await waitFor(() => h.sockets[0]?.hellos().length === 1);
    h.sockets[0]!.frame({ type: 'error', code: 'token_expired', message: 'expired' });
    await waitFor(() => h.sockets[1]?.hellos().length === 1);
    expect(h.sockets[1]!.protocols).toEqual(['or3-sync.v1', 'or3-sync.v1+push', 'bearer.fresh']);
  });
});

describe('falling back', () => {
  it('steps down to the event stream after repeated WebSocket failures, reading the same frames', async () => {
    let streamed = 0;
    const requests: Request[] = [];
    const fetchImpl: typeof fetch = async (input, init) => {
      const request = new Request(input, init);
      requests.push(request);
      streamed += 1;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          const text = `: ping\n\ndata: ${JSON.stringify(changesFrame(2, 4))}\n\ndata: ${JSON.stringify(changesFrame(4, 5))}\r\n\r\n`;
          controller.enqueue(new TextEncoder().encode(text));
        },
      });
      return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
    };
    const h = harness({ fallbackAfterFailures: 2 }, () => fetchImpl);
    h.refusals = 100;
    h.applied = 2;
    h.subscribe(2);
    await waitFor(() => h.applied === 5);
    expect(h.sockets).toHaveLength(2);
    expect(streamed).toBe(1);
    const url = new URL(requests[0]!.url);
    expect(url.pathname).toBe('/v1/workspaces/w1/events');
    expect(url.searchParams.get('cursor')).toBe('2');
    expect(requests[0]!.headers.get('authorization')).toBe('Bearer tok');
    expect(requests[0]!.headers.get('x-device-id')).toBe(scope.deviceId);
    expect(spans(h)).toEqual([
      [2, 4, [3, 4]],
      [4, 5, [5]],
    ]);
    expect(h.states.find((s) => s.connected)).toMatchObject({ transport: 'sse' });
  });

  it('falls back to polling when neither WebSocket nor the event stream connects', async () => {
    const h = harness({ fallbackAfterFailures: 1, WebSocket: null }, (pulls) => async (input, init) => {
      if (String(input).includes('/events')) return new Response('no', { status: 502 });
      return pulls(input, init);
    });
    h.log = [change(1), change(2)];
    h.subscribe(0);
    await waitFor(() => h.applied === 2);
    expect(h.states.find((s) => s.connected)).toMatchObject({ transport: 'poll' });
  });

  it('an event stream refused with a coded body ends with the server\'s code (a deleted workspace is unknown_workspace)', async () => {
    const refusal = { error: { code: 'unknown_workspace', message: 'workspace w1 does not exist' } };
    const h = harness({ WebSocket: null }, (pulls) => async (input, init) => {
      if (String(input).includes('/events')) return Response.json(refusal, { status: 404 });
      return pulls(input, init);
    });
    h.subscribe(0);
    await waitFor(() => h.errors.length === 1);
    expect(h.errors[0]).toMatchObject({ code: 'unknown_workspace', status: 404 });
  });

  it('an event stream refused without a body keeps the status\'s code', async () => {
    const h = harness({ WebSocket: null }, (pulls) => async (input, init) => {
      if (String(input).includes('/events')) return new Response('gone', { status: 404 });
      return pulls(input, init);
    });
    h.subscribe(0);
    await waitFor(() => h.errors.length === 1);
    expect(h.errors[0]).toMatchObject({ code: 'not_found', status: 404 });
  });
});

describe('event stream parsing', () => {
  it('joins data lines, ignores comments, and copes with events split across chunks and CRLF', () => {
    const parser = new EventStreamParser();
    expect(parser.push(': ping\n\ndata: {"a"')).toEqual([]);
    expect(parser.push(':1}\r\n\r')).toEqual([]);
    expect(parser.push('\ndata: x\ndata: y\n\nevent: z\ndata:w\n\n')).toEqual(['{"a":1}', 'x\ny', 'w']);
  });

  it('reads exp from a JWT and nothing from other tokens', () => {
    expect(tokenExpiry(jwt(1_900_000_000))).toBe(1_900_000_000);
    expect(tokenExpiry('opaque-token')).toBeNull();
    expect(tokenExpiry('a.%%%.c')).toBeNull();
  });
});

describe('pushes on the subscription socket', () => {
  const op: PushOp = {
    op_id: '00000000-0000-4000-8000-000000000001',
    table_name: 'threads',
    operation: 'put',
    pk: 't1',
    payload: { id: 't1' },
    clock: 1,
    hlc: '1732540000000-000000-aaaaaaaaaaaaaaaa',
    device_id: 'aaaaaaaaaaaaaaaa',
  };
  const answer: PushResponse = {
    results: [{ op_id: op.op_id, status: 'applied', server_version: 5 }],
    server_version: 5,
    server_time: 1732540001234,
  };

  /** A harness whose fetch also answers pushes, counting them. */
  function pushHarness(serverProtocol: string, options: Partial<GatewayProviderOptions> = {}) {
    const http: string[] = [];
    const h = harness(options, (pulls) => async (input, init) => {
      const url = new URL(String(input));
      if (!url.pathname.endsWith('/push')) return pulls(input, init);
      http.push(String(init?.body));
      return new Response(JSON.stringify(answer), { status: 200, headers: { 'content-type': 'application/json' } });
    });
    h.serverProtocol = serverProtocol;
    return { h, http };
  }

  const pushFrames = (socket: FakeSocket) => socket.sent.filter((f) => f.type === 'push');

  async function subscribedSocket(h: Harness): Promise<FakeSocket> {
    h.subscribe(0);
    await waitFor(() => h.sockets.at(-1)?.hellos().length === 1);
    return h.sockets.at(-1)!;
  }

  it('a push goes on the open socket of a gateway that takes them, after the hello, and settles on its answer', async () => {
    const { h, http } = pushHarness('or3-sync.v1+push');
    const socket = await subscribedSocket(h);
    const pushed = h.provider.push(scope, [op]);
    await waitFor(() => pushFrames(socket).length === 1);
    const frame = pushFrames(socket)[0]!;
    expect(socket.sent[0]!.type).toBe('hello');
    expect(frame).toEqual({ type: 'push', id: expect.any(String), ops: [op] });
    socket.frame({ type: 'push_result', id: 'another', ...answer, server_version: 99 });
    socket.frame({ type: 'push_result', id: frame.id, ...answer });
    await expect(pushed).resolves.toEqual(answer);
    expect(http).toEqual([]);
  });

  it('goes over HTTP without an open socket, and to a gateway that chose or3-sync.v1 (it does not take pushes on the socket)', async () => {
    const { h, http } = pushHarness('or3-sync.v1');
    await expect(h.provider.push(scope, [op])).resolves.toEqual(answer);
    const socket = await subscribedSocket(h);
    expect(socket.protocols).toContain('or3-sync.v1+push');
    await expect(h.provider.push(scope, [op])).resolves.toEqual(answer);
    expect(http).toHaveLength(2);
    expect(pushFrames(socket)).toEqual([]);
  });

  it('a socket that closes before the answer fails the push as a network error, as HTTP does; the next goes on the new socket', async () => {
    const { h, http } = pushHarness('or3-sync.v1+push');
    const first = await subscribedSocket(h);
    const pushed = h.provider.push(scope, [op]);
    await waitFor(() => pushFrames(first).length === 1);
    first.drop();
    await expect(pushed).rejects.toMatchObject({ name: 'SyncProviderError', code: 'network_error', status: 0, retryable: true });
    await waitFor(() => h.sockets.length === 2 && h.sockets[1]!.hellos().length === 1);
    const again = h.provider.push(scope, [op]);
    await waitFor(() => pushFrames(h.sockets[1]!).length === 1);
    h.sockets[1]!.frame({ type: 'push_result', id: pushFrames(h.sockets[1]!)[0]!.id, ...answer });
    await expect(again).resolves.toEqual(answer);
    expect(http).toEqual([]);
  });

  it('a socket that stays silent fails the push at the request deadline', async () => {
    const { h } = pushHarness('or3-sync.v1+push', { requestTimeoutMs: 80 });
    await subscribedSocket(h);
    const started = Date.now();
    await expect(h.provider.push(scope, [op])).rejects.toMatchObject({ code: 'network_error', status: 0 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(70);
  });

  it('a refusal carries the status, code, field and Retry-After of the HTTP route; one of the socket itself goes over HTTP', async () => {
    const { h, http } = pushHarness('or3-sync.v1+push');
    const socket = await subscribedSocket(h);
    const limited = h.provider.push(scope, [op]);
    await waitFor(() => pushFrames(socket).length === 1);
    socket.frame({
      type: 'push_error',
      id: pushFrames(socket)[0]!.id,
      status: 429,
      error: { code: 'rate_limited', message: 'too many push requests; retry in 3 s' },
      retry_after: 3,
    });
    await expect(limited).rejects.toMatchObject({ code: 'rate_limited', status: 429, retryAfterMs: 3000, retryable: true });
    const large = h.provider.push(scope, [op]);
    await waitFor(() => pushFrames(socket).length === 2);
    socket.frame({ type: 'push_error', id: pushFrames(socket)[1]!.id, status: 413, error: { code: 'too_many_ops', message: 'at most 1', field: 'ops' } });
    await expect(large).rejects.toMatchObject({ code: 'too_many_ops', status: 413, field: 'ops' });
    // Its hello not accepted (yet): the push goes over HTTP instead.
    const early = h.provider.push(scope, [op]);
    await waitFor(() => pushFrames(socket).length === 3);
    socket.frame({ type: 'push_error', id: pushFrames(socket)[2]!.id, status: 400, error: { code: 'invalid_frame', message: 'hello first' } });
    await expect(early).resolves.toEqual(answer);
    expect(http).toHaveLength(1);
  });

  it('an answer\'s rate_limit sets lastRateLimitRemaining (which the push loop reads to slow down), as RateLimit-Remaining does over HTTP', async () => {
    const { h } = pushHarness('or3-sync.v1+push');
    const socket = await subscribedSocket(h);
    expect(h.provider.lastRateLimitRemaining).toBeNull();
    const answered = h.provider.push(scope, [op]);
    await waitFor(() => pushFrames(socket).length === 1);
    socket.frame({ type: 'push_result', id: pushFrames(socket)[0]!.id, ...answer, rate_limit: { limit: 600, remaining: 3, reset: 1 } });
    await expect(answered).resolves.toEqual(answer);
    expect(h.provider.lastRateLimitRemaining).toBe(3);
    // An answer without the field (a server that limits no pushes) leaves the last count, as an answer without the header does.
    const unlimited = h.provider.push(scope, [op]);
    await waitFor(() => pushFrames(socket).length === 2);
    socket.frame({ type: 'push_result', id: pushFrames(socket)[1]!.id, ...answer });
    await unlimited;
    expect(h.provider.lastRateLimitRemaining).toBe(3);
    const refused = h.provider.push(scope, [op]);
    await waitFor(() => pushFrames(socket).length === 3);
    socket.frame({
      type: 'push_error',
      id: pushFrames(socket)[2]!.id,
      status: 429,
      error: { code: 'rate_limited', message: 'too many push requests; retry in 2 s' },
      retry_after: 2,
      rate_limit: { limit: 600, remaining: 0, reset: 60 },
    });
    await expect(refused).rejects.toMatchObject({ code: 'rate_limited', rateLimitRemaining: 0, retryAfterMs: 2000 });
    expect(h.provider.lastRateLimitRemaining).toBe(0);
  });

  it('a refusal with a code this client does not know gets the code of its status, as over HTTP', async () => {
    const { h } = pushHarness('or3-sync.v1+push');
    const socket = await subscribedSocket(h);
    const pushed = h.provider.push(scope, [op]);
    await waitFor(() => pushFrames(socket).length === 1);
    socket.frame({ type: 'push_error', id: pushFrames(socket)[0]!.id, status: 429, error: { code: 'from_a_newer_server', message: 'slow down' } });
    await expect(pushed).rejects.toMatchObject({ code: 'rate_limited', status: 429, message: 'slow down' });
  });

  it('an answer settles the push at once, not behind a changes frame still being applied', async () => {
    const { h } = pushHarness('or3-sync.v1+push');
    let release = () => {};
    const applying = new Promise<void>((resolve) => (release = resolve));
    h.provider.subscribe(scope, 0, () => applying, (error) => h.errors.push(error));
    await waitFor(() => h.sockets[0]?.hellos().length === 1);
    const socket = h.sockets[0]!;
    const pushed = h.provider.push(scope, [op]);
    await waitFor(() => pushFrames(socket).length === 1);
    socket.frame(changesFrame(0, 5));
    socket.frame({ type: 'push_result', id: pushFrames(socket)[0]!.id, ...answer });
    await expect(pushed).resolves.toEqual(answer);
    release();
  });

  it('a socket already closing (its close event not yet in) is passed over for HTTP', async () => {
    const { h, http } = pushHarness('or3-sync.v1+push');
    const socket = await subscribedSocket(h);
    socket.readyState = 2;
    await expect(h.provider.push(scope, [op])).resolves.toEqual(answer);
    expect(http).toHaveLength(1);
    expect(pushFrames(socket)).toEqual([]);
  });

  it('a push too large for a frame goes over HTTP', async () => {
    const { h, http } = pushHarness('or3-sync.v1+push');
    const socket = await subscribedSocket(h);
    const big = { ...op, payload: { id: 't1', text: 'x'.repeat(70_000) } };
    await expect(h.provider.push(scope, [big])).resolves.toEqual(answer);
    expect(http).toHaveLength(1);
    expect(pushFrames(socket)).toEqual([]);
  });
});
