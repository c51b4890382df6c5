/**
 * A fault-injecting HTTP and WebSocket proxy on loopback, between the client
 * engines and the gateway. For each request a `FaultSchedule` decides: pass
 * it, delay it, drop it before the server sees it, drop the answer after the
 * server handled it, send it to the server twice, or answer 503 itself (an
 * overloaded or draining node) without forwarding. A WebSocket may be cut
 * after a while, and so may a Server-Sent Events stream (`accept:
 * text/event-stream`), which is streamed through rather than buffered. The
 * proxy keeps its port when the server behind it restarts
 * on another one (`setTarget`).
 *
 * Requests name their lane (one per simulated device) in the `x-fault-lane`
 * header, which the proxy strips; a seeded schedule draws each lane's
 * decisions from a stream of its own, so devices do not shift each other's
 * faults.
 *
 * Past 450 lines on purpose: the HTTP, WebSocket and event-stream paths share
 * one schedule, one lane table and one retargeting, and a fault reads best
 * next to the path it breaks.
 */
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { Prng } from './prng.js';

/** The header naming a request's lane. */
export const LANE_HEADER = 'x-fault-lane';

/** What the proxy does with one HTTP request. */
export type HttpFault = 'pass' | 'delay' | 'drop_request' | 'drop_response' | 'duplicate' | 'unavailable';

/** A request (or WebSocket upgrade) as the schedule sees it. */
export interface ProxiedRequest {
  lane: string;
  method: string;
  path: string;
  /** 0-based number of this request within its lane (HTTP and upgrades counted apart). */
  index: number;
}

export interface HttpDecision {
  fault: HttpFault;
  /** For `delay`: how long before forwarding; for `duplicate`: the gap before the second copy. */
  delayMs: number;
  /** For `duplicate`: answer with the second copy's response instead of the first's. */
  answerSecond: boolean;
}

export interface SocketDecision {
  /** Cut the connection (both sides, with a reset) this long after it opens; null: never. */
  cutAfterMs: number | null;
}

/** Decides the fate of each request and connection. */
export interface FaultSchedule {
  decideRequest(info: ProxiedRequest): HttpDecision;
  decideSocket(info: ProxiedRequest): SocketDecision;
}

/** A decision to `fault` (with no delay and the first answer). */
export function decision(fault: HttpFault, delayMs = 0, answerSecond = false): HttpDecision {
  return { fault, delayMs, answerSecond };
}

/** No faults. */
export const PASS_ALL: FaultSchedule = {
  decideRequest: () => ({ fault: 'pass', delayMs: 0, answerSecond: false }),
  decideSocket: () => ({ cutAfterMs: null }),
};

/** Probabilities of each fault per request (the rest pass) and their sizes. */
export interface FaultRates {
  delay: number;
  drop_request: number;
  drop_response: number;
  duplicate: number;
  unavailable: number;
  maxDelayMs: number;
  /** Probability that a WebSocket is cut at some point of its first `maxSocketLifeMs`. */
  socketCut: number;
  maxSocketLifeMs: number;
}

export const DEFAULT_FAULT_RATES: FaultRates = {
  delay: 0.15,
  drop_request: 0.08,
  drop_response: 0.08,
  duplicate: 0.08,
  unavailable: 0.03,
  maxDelayMs: 250,
  socketCut: 0.5,
  maxSocketLifeMs: 2000,
};

/**
 * A schedule drawn from `prng`: each lane has its own stream, and every
 * decision draws the same amount from it, so a lane's n-th request always
 * meets the same fate for a given seed.
 */
export function seededSchedule(prng: Prng, rates: FaultRates = DEFAULT_FAULT_RATES): FaultSchedule {
  const streams = new Map<string, Prng>();
  const stream = (kind: string, lane: string) => {
    const key = `${kind}:${lane}`;
    let s = streams.get(key);
    if (!s) streams.set(key, (s = prng.fork(key)));
    return s;
  };
  return {
    decideRequest(info) {
      const s = stream('http', info.lane);
      const x = s.next();
      const delayMs = s.int(rates.maxDelayMs + 1);
      const answerSecond = s.chance(0.5);
      let fault: HttpFault = 'pass';
      let edge = 0;
      for (const candidate of ['delay', 'drop_request', 'drop_response', 'duplicate', 'unavailable'] as const) {
        edge += rates[candidate];
        if (x < edge) {
          fault = candidate;
          break;
        }
      }
      return { fault, delayMs, answerSecond };
    },
    decideSocket(info) {
      const s = stream('ws', info.lane);
      const cut = s.chance(rates.socketCut);
      const after = s.int(rates.maxSocketLifeMs + 1);
      return { cutAfterMs: cut ? after : null };
    },
  };
}

/** What the proxy did, by kind. */
export interface ProxyCounts {
  requests: number;
  pass: number;
  delay: number;
  drop_request: number;
  drop_response: number;
  duplicate: number;
  unavailable: number;
  /** Requests that found no server (down or restarting) or lost it mid-request. */
  upstream_unreachable: number;
  sockets_opened: number;
  sockets_cut: number;
}

function emptyCounts(): ProxyCounts {
  return {
    requests: 0,
    pass: 0,
    delay: 0,
    drop_request: 0,
    drop_response: 0,
    duplicate: 0,
    unavailable: 0,
    upstream_unreachable: 0,
    sockets_opened: 0,
    sockets_cut: 0,
  };
}

/** A buffered answer of the server. */
interface UpstreamAnswer {
  status: number;
  headers: http.OutgoingHttpHeaders;
  body: Buffer;
}

/** Headers that describe one hop; the proxy sets its own. */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

/** A WebSocket tunnel: the client's socket and the server's. */
interface Tunnel {
  lane: string;
  client: Duplex;
  upstream: net.Socket;
  timer: ReturnType<typeof setTimeout> | null;
}

/** The proxy. Start it with `FaultProxy.start()`. */
export class FaultProxy {
  readonly counts: ProxyCounts = emptyCounts();
  private readonly server: http.Server;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private readonly laneIndexes = new Map<string, number>();
  private readonly tunnels = new Set<Tunnel>();
  private schedule: FaultSchedule;
  private target: number | null;
  private listeningPort = 0;

  private constructor(schedule: FaultSchedule, target: number | null) {
    this.schedule = schedule;
    this.target = target;
    this.server = http.createServer((req, res) => {
      this.onRequest(req, res).catch(() => reset(req.socket));
    });
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.server.on('clientError', (_error, socket) => socket.destroy());
  }

  /** Listens on an ephemeral loopback port, forwarding to `targetPort` (null: no server yet). */
  static async start(options: { schedule?: FaultSchedule; targetPort?: number | null } = {}): Promise<FaultProxy> {
    const proxy = new FaultProxy(options.schedule ?? PASS_ALL, options.targetPort ?? null);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy.listeningPort = (proxy.server.address() as net.AddressInfo).port;
    return proxy;
  }

  get port(): number {
    return this.listeningPort;
  }

  /** The origin clients use, e.g. `http://127.0.0.1:41234`. */
  get url(): string {
    return `http://127.0.0.1:${this.listeningPort}`;
  }

  /** Forwards to the server on `port` from now on; null while there is none (requests then fail). */
  setTarget(port: number | null): void {
    this.target = port;
  }

  setSchedule(schedule: FaultSchedule): void {
    this.schedule = schedule;
  }

  /** Cuts open WebSockets (of one lane, or all). */
  cutSockets(lane?: string): void {
    for (const tunnel of [...this.tunnels]) {
      if (lane === undefined || tunnel.lane === lane) this.closeTunnel(tunnel, true);
    }
  }

  /** Open WebSocket tunnels. */
  get openSockets(): number {
    return this.tunnels.size;
  }

  async close(): Promise<void> {
    this.cutSockets();
    this.server.closeAllConnections();
    this.agent.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private info(req: http.IncomingMessage, kind: 'http' | 'ws'): ProxiedRequest {
    const lane = headerValue(req, LANE_HEADER) ?? 'default';
    const key = `${kind}:${lane}`;
    const index = this.laneIndexes.get(key) ?? 0;
    this.laneIndexes.set(key, index + 1);
    return { lane, method: req.method ?? 'GET', path: req.url ?? '/', index };
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (headerValue(req, 'accept')?.includes('text/event-stream')) {
      this.streamThrough(req, res);
      return;
    }
    const body = await readBody(req);
    const info = this.info(req, 'http');
    const decision = this.schedule.decideRequest(info);
    this.counts.requests += 1;
    this.counts[decision.fault] += 1;
    switch (decision.fault) {
      case 'drop_request':
        reset(req.socket);
        return;
      case 'unavailable': {
        const body = Buffer.from(JSON.stringify({ error: { code: 'store_unavailable', message: 'fault proxy: overloaded' } }));
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '0', 'content-length': String(body.length) });
        res.end(body);
        return;
      }
      case 'drop_response':
        await this.forward(req, body);
        reset(req.socket);
        return;
      case 'delay':
        await sleep(decision.delayMs);
        this.answer(req, res, await this.forward(req, body));
        return;
      case 'duplicate': {
        const first = this.forward(req, body);
        await sleep(decision.delayMs);
        const second = this.forward(req, body);
        const [a, b] = await Promise.all([first, second]);
        this.answer(req, res, decision.answerSecond ? (b ?? a) : (a ?? b));
        return;
      }
      case 'pass':
        this.answer(req, res, await this.forward(req, body));
        return;
    }
  }

  /** Sends the request to the server and buffers its whole answer; null when the server is unreachable. */
  private forward(req: http.IncomingMessage, body: Buffer): Promise<UpstreamAnswer | null> {
    const port = this.target;
    if (port === null) {
      this.counts.upstream_unreachable += 1;
      return Promise.resolve(null);
    }
    const headers = upstreamHeaders(req);
    headers['content-length'] = String(body.length);
    return new Promise((resolve) => {
      const upstream = http.request(
        { host: '127.0.0.1', port, method: req.method, path: req.url, headers, agent: this.agent, timeout: 30_000 },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const out: http.OutgoingHttpHeaders = {};
            for (const [name, value] of Object.entries(response.headers)) {
              if (!HOP_HEADERS.has(name) && value !== undefined) out[name] = value;
            }
            resolve({ status: response.statusCode ?? 502, headers: out, body: Buffer.concat(chunks) });
          });
          response.on('error', () => unreachable());
          response.on('aborted', () => unreachable());
        },
      );
      const unreachable = () => {
        this.counts.upstream_unreachable += 1;
        resolve(null);
      };
      upstream.on('error', unreachable);
      upstream.on('timeout', () => upstream.destroy(new Error('upstream timeout')));
      upstream.end(body);
    });
  }

  /** Writes the server's answer, or resets the connection when there is none (as a dead server would). */
  private answer(req: http.IncomingMessage, res: http.ServerResponse, answer: UpstreamAnswer | null): void {
    if (!answer) {
      reset(req.socket);
      return;
    }
    res.writeHead(answer.status, { ...answer.headers, 'content-length': String(answer.body.length) });
    res.end(answer.body);
  }

  /**
   * A long-lived stream (SSE): forwarded as it arrives, and cut like a
   * WebSocket by the schedule (its lane's socket decisions).
   */
  private streamThrough(req: http.IncomingMessage, res: http.ServerResponse): void {
    const info = this.info(req, 'ws');
    const decision = this.schedule.decideSocket(info);
    const port = this.target;
    if (port === null) {
      this.counts.upstream_unreachable += 1;
      reset(req.socket);
      return;
    }
    const upstream = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: upstreamHeaders(req) });
    this.counts.sockets_opened += 1;
    upstream.on('socket', (socket) => {
      const tunnel: Tunnel = { lane: info.lane, client: req.socket, upstream: socket, timer: null };
      this.tunnels.add(tunnel);
      const end = () => this.closeTunnel(tunnel, false);
      socket.on('close', end);
      req.socket.on('close', end);
      if (decision.cutAfterMs !== null) tunnel.timer = setTimeout(() => this.closeTunnel(tunnel, true), decision.cutAfterMs);
    });
    upstream.on('response', (response) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(response.headers)) {
        if (!HOP_HEADERS.has(name) && value !== undefined) out[name] = value;
      }
      res.writeHead(response.statusCode ?? 502, out);
      res.flushHeaders();
      response.pipe(res);
    });
    upstream.on('error', () => reset(req.socket));
    upstream.end();
  }

  private onUpgrade(req: http.IncomingMessage, client: Duplex, head: Buffer): void {
    const info = this.info(req, 'ws');
    const decision = this.schedule.decideSocket(info);
    const port = this.target;
    if (port === null) {
      this.counts.upstream_unreachable += 1;
      reset(client);
      return;
    }
    const upstream = net.connect(port, '127.0.0.1');
    const tunnel: Tunnel = { lane: info.lane, client, upstream, timer: null };
    this.tunnels.add(tunnel);
    this.counts.sockets_opened += 1;
    upstream.once('connect', () => {
      upstream.setNoDelay(true);
      const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const name = req.rawHeaders[i]!;
        if (name.toLowerCase() === LANE_HEADER) continue;
        lines.push(`${name}: ${req.rawHeaders[i + 1]!}`);
      }
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    const end = () => this.closeTunnel(tunnel, false);
    upstream.on('error', end);
    upstream.on('close', end);
    client.on('error', end);
    client.on('close', end);
    if (decision.cutAfterMs !== null) {
      tunnel.timer = setTimeout(() => this.closeTunnel(tunnel, true), decision.cutAfterMs);
    }
  }

  private closeTunnel(tunnel: Tunnel, cut: boolean): void {
    if (!this.tunnels.delete(tunnel)) return;
    if (tunnel.timer) clearTimeout(tunnel.timer);
    if (cut) this.counts.sockets_cut += 1;
    reset(tunnel.client);
    reset(tunnel.upstream);
  }
}

/** Ends a connection abruptly (TCP reset when the socket supports it), as a network failure would. */
function reset(socket: Duplex): void {
  const s = socket as Partial<net.Socket> & Duplex;
  if (typeof s.resetAndDestroy === 'function' && !s.destroyed) {
    try {
      s.resetAndDestroy();
      return;
    } catch {
      // Not connected yet: a plain destroy does.
    }
  }
  socket.destroy();
}

/** The request's headers for the server: without the lane and the hop's own. */
function upstreamHeaders(req: http.IncomingMessage): http.OutgoingHttpHeaders {
  const headers: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name === LANE_HEADER || name === 'host' || HOP_HEADERS.has(name) || value === undefined) continue;
    headers[name] = value;
  }
  return headers;
}

function headerValue(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : resolve()));
}
