/** Each fault of the proxy does what it says, against a small loopback server. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import {
  decision,
  FaultProxy,
  LANE_HEADER,
  seededSchedule,
  type FaultSchedule,
  type HttpDecision,
  type ProxiedRequest,
} from '../src/fault-proxy.js';
import { Prng } from '../src/prng.js';

/** An upstream that counts requests, echoes bodies, and serves a WebSocket echo and an SSE stream. */
interface Upstream {
  port: number;
  seen: { method: string; path: string; body: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

async function startUpstream(): Promise<Upstream> {
  const seen: Upstream['seen'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method!, path: req.url!, body: Buffer.concat(chunks).toString(), headers: req.headers });
      if (req.url === '/events') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: one\n\n');
        setTimeout(() => res.write('data: two\n\n'), 50);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ echo: Buffer.concat(chunks).toString(), n: seen.length }));
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`echo:${data.toString()}`)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A schedule that answers every request with `next()`. */
function scripted(next: (info: ProxiedRequest) => HttpDecision, cutAfterMs: number | null = null): FaultSchedule {
  return { decideRequest: next, decideSocket: () => ({ cutAfterMs }) };
}

let upstream: Upstream;
let proxy: FaultProxy;

beforeEach(async () => {
  upstream = await startUpstream();
  proxy = await FaultProxy.start({ targetPort: upstream.port });
});
afterEach(async () => {
  await proxy.close();
  await upstream.close();
});

const post = (body: string, lane = 'd0') =>
  fetch(`${proxy.url}/v1/push`, { method: 'POST', body, headers: { [LANE_HEADER]: lane, 'content-type': 'application/json' } });

describe('fault proxy', () => {
  it('pass forwards the request once, without the lane header, and returns the answer', async () => {
    proxy.setSchedule(scripted(() => decision('pass')));
    const response = await post('hello');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ echo: 'hello', n: 1 });
    expect(upstream.seen).toHaveLength(1);
    expect(upstream.seen[0]!.headers[LANE_HEADER]).toBeUndefined();
    expect(proxy.counts).toMatchObject({ requests: 1, pass: 1 });
  });

  it('drop_request: the client sees a network error and the server never sees the request', async () => {
    proxy.setSchedule(scripted(() => decision('drop_request')));
    await expect(post('lost')).rejects.toThrow();
    expect(upstream.seen).toHaveLength(0);
  });

  it('drop_response: the server handles the request, then the client sees a network error', async () => {
    proxy.setSchedule(scripted(() => decision('drop_response')));
    await expect(post('handled')).rejects.toThrow();
    expect(upstream.seen.map((s) => s.body)).toEqual(['handled']);
  });

  it('duplicate: the server sees the request twice, the client gets one answer', async () => {
    proxy.setSchedule(scripted(() => decision('duplicate', 20, true)));
    const response = await post('twice');
    expect(response.status).toBe(200);
    expect(((await response.json()) as { n: number }).n).toBeGreaterThanOrEqual(1);
    expect(upstream.seen.map((s) => s.body)).toEqual(['twice', 'twice']);
  });

  it('delay holds the request back before forwarding it', async () => {
    proxy.setSchedule(scripted(() => decision('delay', 200)));
    const started = Date.now();
    const response = await post('slow');
    expect(response.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('unavailable: the proxy answers 503 itself and the server never sees the request', async () => {
    proxy.setSchedule(scripted(() => decision('unavailable')));
    const response = await post('busy');
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('store_unavailable');
    expect(upstream.seen).toHaveLength(0);
  });

  it('with no server behind it requests fail as a network error; setTarget follows the server to a new port', async () => {
    proxy.setTarget(null);
    await expect(post('nobody')).rejects.toThrow();
    const moved = await startUpstream();
    try {
      proxy.setTarget(moved.port);
      expect((await post('found')).status).toBe(200);
      expect(moved.seen.map((s) => s.body)).toEqual(['found']);
      expect(upstream.seen).toHaveLength(0);
    } finally {
      await moved.close();
    }
  });

  it('a WebSocket passes frames both ways, and a scheduled cut closes it', async () => {
    proxy.setSchedule(scripted(() => decision('pass'), 300));
    const socket = new WebSocket(`ws://127.0.0.1:${proxy.port}/v1/ws`, { headers: { [LANE_HEADER]: 'd1' } });
    const messages: string[] = [];
    socket.on('message', (data) => messages.push(data.toString()));
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    socket.send('ping');
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    socket.on('error', () => {});
    const started = Date.now();
    expect(await closed).toBe(1006); // abnormal closure: no close frame, as a network cut
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(messages).toEqual(['echo:ping']);
    expect(proxy.counts).toMatchObject({ sockets_opened: 1, sockets_cut: 1 });
  });

  it('cutSockets cuts one lane and leaves the others', async () => {
    const open = async (lane: string) => {
      const socket = new WebSocket(`ws://127.0.0.1:${proxy.port}/v1/ws`, { headers: { [LANE_HEADER]: lane } });
      socket.on('error', () => {});
      await new Promise((resolve) => socket.once('open', resolve));
      return socket;
    };
    const [a, b] = [await open('a'), await open('b')];
    const aClosed = new Promise((resolve) => a.once('close', resolve));
    proxy.cutSockets('a');
    await aClosed;
    expect(b.readyState).toBe(WebSocket.OPEN);
    expect(proxy.openSockets).toBe(1);
    b.terminate();
  });

  it('an event stream is forwarded as it arrives, not when it ends', async () => {
    const response = await fetch(`${proxy.url}/events`, { headers: { accept: 'text/event-stream', [LANE_HEADER]: 'd0' } });
    const reader = response.body!.getReader();
    let text = '';
    while (!text.includes('two')) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).toBe('data: one\n\ndata: two\n\n');
    await reader.cancel();
  });
});

describe('seeded schedule', () => {
  const draw = (schedule: FaultSchedule, lane: string, n: number) =>
    Array.from({ length: n }, (_, index) => schedule.decideRequest({ lane, method: 'POST', path: '/push', index }));

  it('gives a lane the same decisions for the same seed, however other lanes interleave', () => {
    const a = seededSchedule(new Prng(7));
    const b = seededSchedule(new Prng(7));
    const alone = draw(a, 'd0', 50);
    draw(b, 'd1', 13);
    const interleaved = draw(b, 'd0', 50);
    expect(interleaved).toEqual(alone);
    expect(draw(seededSchedule(new Prng(8)), 'd0', 50)).not.toEqual(alone);
  });

  it('draws every fault at roughly its rate', () => {
    const decisions = draw(seededSchedule(new Prng(1)), 'd0', 4000);
    const share = (fault: string) => decisions.filter((d) => d.fault === fault).length / decisions.length;
    expect(share('delay')).toBeCloseTo(0.15, 1);
    expect(share('drop_request')).toBeCloseTo(0.08, 1);
    expect(share('drop_response')).toBeCloseTo(0.08, 1);
    expect(share('duplicate')).toBeCloseTo(0.08, 1);
    expect(share('unavailable')).toBeGreaterThan(0.01);
    expect(share('pass')).toBeGreaterThan(0.5);
  });
});
