/**
 * The gateway's WebSocket used only as a wake-up: any `changes` or `poke`
 * frame means "pull now". The data itself still comes through OR3's
 * `/api/sync/pull` (its session, its checks, this package's mapping). The
 * token comes from the module's realtime-token route and is refreshed before
 * it expires (`auth` frame); a closed socket reconnects with backoff.
 */
import type { SyncScope } from '../or3-types.js';

/**
 * The part of the browser's `WebSocket` this uses (the `ws` package fits
 * too). Handlers are only assigned here, never called, so their event types
 * are left to each implementation.
 */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  send(data: string): void;
  close(): void;
}
export type WebSocketFactory = (url: string, protocols: string[]) => WebSocketLike;

export interface RealtimeToken {
  token: string;
  expiresAt: number;
  url: string;
}

export interface WakeSocketOptions {
  scope: SyncScope;
  /** The cursor the engine has applied, sent in each `hello`. */
  cursor(): number;
  token(): Promise<RealtimeToken>;
  openSocket: WebSocketFactory;
  /** Called on every frame that announces new changes (`changes`, or `poke` after which `rearm` is owed). */
  onWake(frame: 'changes' | 'poke'): void;
}

const OPEN = 1;
const MAX_BACKOFF_MS = 30_000;
const REFRESH_BEFORE_EXPIRY_MS = 15_000;

/** Opens and keeps the wake-up subscription; returns its stop function. */
export function keepWakeSocket(options: WakeSocketOptions): { stop(): void; rearm(): void } {
  let socket: WebSocketLike | undefined;
  let stopped = false;
  let attempt = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const later = (fn: () => void, ms: number) => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
  const hello = () =>
    socket?.readyState === OPEN &&
    socket.send(JSON.stringify({ type: 'hello', cursor: options.cursor(), project_id: options.scope.projectId ?? null }));

  const refresh = (expiresAt: number) =>
    later(async () => {
      try {
        const next = await options.token();
        if (socket?.readyState === OPEN) socket.send(JSON.stringify({ type: 'auth', token: next.token }));
        refresh(next.expiresAt);
      } catch {
        socket?.close(); // reconnects with backoff
      }
    }, Math.max(1000, expiresAt - Date.now() - REFRESH_BEFORE_EXPIRY_MS));

  const reconnect = () => {
    if (stopped) return;
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempt);
    attempt += 1;
    later(connect, delay);
  };

  async function connect() {
    if (stopped) return;
    let grant: RealtimeToken;
    try {
      grant = await options.token();
    } catch {
      return reconnect();
    }
    if (stopped) return;
    const url = `${grant.url.replace(/^http/, 'ws')}/v1/workspaces/${encodeURIComponent(options.scope.workspaceId)}/subscribe`;
    const ws = options.openSocket(url, ['or3-sync.v1', `bearer.${grant.token}`]);
    socket = ws;
    ws.onopen = () => {
      attempt = 0;
      hello();
      refresh(grant.expiresAt);
    };
    ws.onmessage = (event: { data: unknown }) => {
      let frame: { type?: string };
      try {
        frame = JSON.parse(String(event.data)) as { type?: string };
      } catch {
        return;
      }
      if (frame.type === 'changes' || frame.type === 'poke') options.onWake(frame.type);
    };
    ws.onclose = () => {
      if (socket === ws) reconnect();
    };
    ws.onerror = () => ws.close();
  }

  void connect();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      socket?.close();
    },
    /** After a `poke` the gateway sends nothing until a new `hello` at the pulled cursor. */
    rearm: hello,
  };
}
