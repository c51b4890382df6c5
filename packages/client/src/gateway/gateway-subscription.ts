/**
 * One realtime subscription of `GatewayProvider` (PROTOCOL.md section 4,
 * "Subscribe"): a WebSocket, else Server-Sent Events read with `fetch`, else
 * polling `changes`. It reconnects with backoff and jitter, always resuming
 * from the cursor the engine has durably applied; it pulls to close a gap
 * between frames and after a poke; it refreshes the token over the socket
 * before it expires; it steps down to the next transport when one keeps
 * failing to connect, and tries the better one again later. While its
 * WebSocket is open to a gateway that takes pushes on it, the provider's
 * pushes go over it (`socket-pushes.ts`).
 */
import { backoffDelay, sleep, type BackoffOptions } from '../backoff.js';
import { readEventStream } from './event-stream.js';
import {
  SyncProviderError,
  isSyncProviderError,
  type ChangesBatch,
  type RealtimeState,
  type RealtimeTransport,
  type SyncScope,
} from '../provider.js';
import {
  endingForErrorFrame,
  endingForFailure,
  endingForStatus,
  parseFrame,
  type ChangesFrame,
  type Ending,
  type ServerFrame,
  type SessionEnd,
} from './session-end.js';
import { isPushAnswer, SocketPushes, type SocketPushOutcome } from './socket-pushes.js';
import { tokenExpiry } from './token-claims.js';
import { SUBSCRIBE_PUSH_SUBPROTOCOL, SUBSCRIBE_SUBPROTOCOL, type WebSocketConstructor } from './websocket.js';
import type { ChangesPage, PushOp } from '@or3/sync-protocol';

/** Tunables of realtime delivery, resolved by `GatewayProvider`. */
export interface RealtimeSettings {
  WebSocket: WebSocketConstructor | null;
  /** Transports to use, best first; `websocket` is skipped without a constructor. */
  transports: RealtimeTransport[];
  /** Failed connects in a row before stepping down to the next transport. */
  fallbackAfterFailures: number;
  /** After this long on a lesser transport, the better ones are tried again. */
  upgradeAfterMs: number;
  /** Refresh the token this long before its `exp`. */
  tokenRefreshLeadMs: number;
  /** An event stream silent for this long (the server pings every 25 s) is reconnected. */
  streamIdleTimeoutMs: number;
  pollIntervalMs: number;
  /** Longest wait for the answer of a push sent on the socket (the provider's request deadline). */
  pushTimeoutMs: number;
  backoff: BackoffOptions;
  random: () => number;
  onState?: (state: RealtimeState) => void;
}

/** What a subscription needs from its provider. */
export interface SubscriptionHost {
  /** The server origin, without a trailing slash. */
  baseUrl: string;
  fetch: typeof fetch;
  getToken(options: { forceRefresh: boolean }): string | Promise<string>;
  pull(scope: SyncScope, cursor: number): Promise<ChangesPage>;
  /** An answer of a push on the socket said how many pushes the rate limit has left. */
  onRateLimitRemaining(remaining: number): void;
}

/** The callbacks and starting point the engine gave `subscribe`. */
export interface SubscriptionTarget {
  scope: SyncScope;
  cursor: number;
  onChanges(batch: ChangesBatch): void | Promise<void>;
  onError(error: SyncProviderError): void;
  /** The engine's durably applied cursor; every (re)connect resumes from it. */
  appliedCursor?: () => Promise<number | null>;
}

/** A running subscription; `stop()` ends it for good. */
export class GatewaySubscription {
  private readonly abort = new AbortController();
  /** Versions up to here have been handed to the engine. */
  private position: number;
  private attempt = 0;
  private readonly failures = new Map<RealtimeTransport, number>();
  private degradedSince: number | null = null;
  private lastResumeAt = 0;
  private forceTokenRefresh = false;
  private closeCurrent: (() => void) | null = null;
  /** Pushes on the open WebSocket, when its gateway takes them. */
  private socketPushes: SocketPushes | null = null;

  constructor(
    private readonly host: SubscriptionHost,
    private readonly settings: RealtimeSettings,
    private readonly target: SubscriptionTarget,
  ) {
    this.position = target.cursor;
  }

  /** Runs until stopped or until a fatal error has been reported. */
  start(): void {
    void this.run();
  }

  /** Ends the subscription; no callback runs after this returns. */
  stop(): void {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    this.closeCurrent?.();
  }

  /** The workspace this subscription follows. */
  get workspaceId(): string {
    return this.target.scope.workspaceId;
  }

  /**
   * Sends a push on the open WebSocket; null when it cannot go there (no socket open, another
   * transport, a gateway that does not take pushes on it, a push too large for a frame).
   */
  pushOverSocket(ops: PushOp[]): Promise<SocketPushOutcome> | null {
    return this.socketPushes?.push(ops) ?? null;
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  private transports(): RealtimeTransport[] {
    const usable = this.settings.transports.filter((t) => t !== 'websocket' || this.settings.WebSocket !== null);
    return usable.length > 0 ? usable : ['poll'];
  }

  /** The best transport that has not failed too often, trying better ones again after a while. */
  private pickTransport(): RealtimeTransport {
    const transports = this.transports();
    if (this.degradedSince !== null && Date.now() - this.degradedSince >= this.settings.upgradeAfterMs) {
      this.failures.clear();
      this.degradedSince = null;
    }
    const picked =
      transports.find((t) => t === 'poll' || (this.failures.get(t) ?? 0) < this.settings.fallbackAfterFailures) ??
      transports.at(-1)!;
    if (picked !== transports[0]) this.degradedSince ??= Date.now();
    return picked;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const transport = this.pickTransport();
      let end: SessionEnd;
      try {
        end =
          transport === 'websocket'
            ? await this.websocketSession()
            : transport === 'sse'
              ? await this.eventStreamSession()
              : await this.pollSession();
      } catch (error) {
        end = this.endFor(error);
      }
      this.closeCurrent = null;
      if (this.stopped) return;
      this.report(transport, false);
      switch (end.kind) {
        case 'fatal':
          this.stop();
          this.target.onError(end.error);
          return;
        case 'resume':
          // Twice within a second is no longer a fresh start (a token the server keeps refusing).
          if (Date.now() - this.lastResumeAt > 1000) {
            this.lastResumeAt = Date.now();
            this.attempt = 0;
            continue;
          }
          this.attempt += 1;
          break;
        case 'failed':
          this.attempt += 1;
          break;
        case 'dropped':
          this.failures.delete(transport);
          this.attempt = 1;
          break;
        case 'connect_failed':
          this.failures.set(transport, (this.failures.get(transport) ?? 0) + 1);
          this.attempt += 1;
          break;
      }
      const retryAfter = end.kind === 'connect_failed' || end.kind === 'failed' ? (end.retryAfterMs ?? null) : null;
      await sleep(backoffDelay(this.attempt, this.settings.backoff, this.settings.random, retryAfter), this.abort.signal);
    }
  }

  private report(transport: RealtimeTransport, connected: boolean): void {
    this.settings.onState?.({ workspaceId: this.target.scope.workspaceId, transport, connected });
  }

  /** Where the next connection starts: what the engine has applied (never just what was received). */
  private async resumeCursor(): Promise<number> {
    const applied = this.target.appliedCursor ? await this.target.appliedCursor() : null;
    this.position = applied ?? this.position;
    return this.position;
  }

  /** A token that has not expired yet, fetched anew when the last one was refused. */
  private async token(): Promise<string> {
    let token = await this.host.getToken({ forceRefresh: this.forceTokenRefresh });
    this.forceTokenRefresh = false;
    const exp = tokenExpiry(token);
    if (exp !== null && exp * 1000 <= Date.now()) token = await this.host.getToken({ forceRefresh: true });
    return token;
  }

  /**
   * Calls `refreshed` with a fresh token `tokenRefreshLeadMs` before `token`
   * expires (and again before the fresh one does). Returns a canceller.
   */
  private scheduleTokenRefresh(token: string, refreshed: (fresh: string) => void): () => void {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const schedule = (current: string) => {
      const exp = tokenExpiry(current);
      if (exp === null || this.stopped) return;
      const delay = Math.min(Math.max(0, exp * 1000 - Date.now() - this.settings.tokenRefreshLeadMs), 2 ** 31 - 1);
      timer = setTimeout(() => {
        void (async () => {
          let fresh = await this.host.getToken({ forceRefresh: false });
          if ((tokenExpiry(fresh) ?? 0) <= exp) fresh = await this.host.getToken({ forceRefresh: true });
          if (timer === null || this.stopped) return;
          refreshed(fresh);
          // A token that does not outlive the old one is not scheduled again: expiry then reconnects.
          if ((tokenExpiry(fresh) ?? 0) > exp) schedule(fresh);
        })().catch(() => {
          // The auth system failed; at expiry the server ends the stream and the reconnect asks again.
        });
      }, delay);
    };
    schedule(token);
    return () => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    };
  }

  private subscribeUrl(kind: 'subscribe' | 'events', cursor?: number): string {
    const { scope } = this.target;
    const url = new URL(`${this.host.baseUrl}/v1/workspaces/${encodeURIComponent(scope.workspaceId)}/${kind}`);
    if (kind === 'subscribe') url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    else {
      url.searchParams.set('cursor', String(cursor ?? 0));
      if (scope.projectId != null) url.searchParams.set('project_id', scope.projectId);
    }
    return url.toString();
  }

  private websocketSession(): Promise<SessionEnd> {
    const Socket = this.settings.WebSocket!;
    return new Promise<SessionEnd>((resolve, reject) => {
      void (async () => {
        const token = await this.token();
        const cursor = await this.resumeCursor();
        if (this.stopped) return resolve({ kind: 'dropped' });
        const socket = new Socket(this.subscribeUrl('subscribe'), [
          SUBSCRIBE_SUBPROTOCOL,
          SUBSCRIBE_PUSH_SUBPROTOCOL,
          `bearer.${token}`,
        ]);
        let opened = false;
        let pushes: SocketPushes | null = null;
        const closePushes = () => {
          pushes?.close();
          if (this.socketPushes === pushes) this.socketPushes = null;
        };
        let ended: SessionEnd | null = null;
        let frames: Promise<void> = Promise.resolve();
        let cancelRefresh = () => {};
        const hello = (at: number) =>
          socket.send(
            JSON.stringify({
              type: 'hello',
              cursor: at,
              device_id: this.target.scope.deviceId ?? null,
              project_id: this.target.scope.projectId ?? null,
            }),
          );
        const end = (outcome: SessionEnd) => {
          ended ??= outcome;
          closePushes();
          cancelRefresh();
          if (socket.readyState <= 1 /* CONNECTING or OPEN */) socket.close(1000);
        };
        this.closeCurrent = () => end({ kind: 'dropped' });
        socket.onopen = () => {
          opened = true;
          hello(cursor);
          // Pushes go behind the hello, which the gateway handles first; one it refused sends them to HTTP.
          if (socket.protocol === SUBSCRIBE_PUSH_SUBPROTOCOL && !ended) {
            this.socketPushes = pushes = new SocketPushes(
              (text) => {
                if (socket.readyState !== 1) throw new Error('the socket is not open');
                socket.send(text);
              },
              this.settings.pushTimeoutMs,
              () => socket.readyState === 1,
              (remaining) => this.host.onRateLimitRemaining(remaining),
            );
          }
          this.report('websocket', true);
          cancelRefresh = this.scheduleTokenRefresh(token, (fresh) => {
            if (socket.readyState === 1) socket.send(JSON.stringify({ type: 'auth', token: fresh }));
          });
        };
        socket.onmessage = (event: { data: unknown }) => {
          const text = typeof event.data === 'string' ? event.data : String(event.data);
          const frame = parseFrame(text);
          // A push's answer settles at once, not behind the changes frames being applied.
          if (isPushAnswer(frame)) return pushes?.answer(frame);
          frames = frames.then(async () => {
            if (ended || this.stopped) return;
            try {
              const outcome = await this.onFrame(frame, hello);
              if (outcome) end(outcome);
            } catch (error) {
              end(this.endFor(error));
            }
          });
        };
        socket.onerror = () => {
          // A close event follows; it decides.
        };
        socket.onclose = () => {
          closePushes();
          cancelRefresh();
          // Frames already received are handled before the session ends.
          void frames.then(() => resolve(ended ?? (opened ? { kind: 'dropped' } : { kind: 'connect_failed' })));
        };
      })().catch(reject);
    });
  }

  private async eventStreamSession(): Promise<SessionEnd> {
    const token = await this.token();
    const cursor = await this.resumeCursor();
    if (this.stopped) return { kind: 'dropped' };
    const request = new AbortController();
    let ended: SessionEnd | null = null;
    const end = (outcome: SessionEnd) => {
      ended ??= outcome;
      request.abort();
    };
    this.closeCurrent = () => end({ kind: 'dropped' });
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'text/event-stream' };
    if (this.target.scope.deviceId) headers['x-device-id'] = this.target.scope.deviceId;
    let response: Response;
    try {
      response = await this.host.fetch(this.subscribeUrl('events', cursor), { headers, signal: request.signal });
    } catch {
      return ended ?? { kind: 'connect_failed' };
    }
    if (!response.ok || !response.body) {
      return this.endForStatus(response, await refusalCode(response));
    }
    this.report('sse', true);
    // SSE cannot carry an auth frame: reconnect with the fresh token instead.
    const cancelRefresh = this.scheduleTokenRefresh(token, () => end({ kind: 'resume' }));
    let idle: ReturnType<typeof setTimeout> | null = null;
    const activity = () => {
      if (idle) clearTimeout(idle);
      idle = setTimeout(() => end({ kind: 'dropped' }), this.settings.streamIdleTimeoutMs);
    };
    activity();
    try {
      for await (const data of readEventStream(response.body, activity)) {
        if (ended || this.stopped) break;
        const outcome = await this.onFrame(parseFrame(data), null);
        if (outcome) {
          end(outcome);
          break;
        }
      }
    } catch (error) {
      if (!ended) end(this.endFor(error));
    } finally {
      cancelRefresh();
      if (idle) clearTimeout(idle);
    }
    return ended ?? { kind: 'dropped' };
  }

  /** The protocol's last resort: `changes` every `pollIntervalMs`. */
  private async pollSession(): Promise<SessionEnd> {
    let cursor = await this.resumeCursor();
    const started = Date.now();
    const upgradable = this.transports()[0] !== 'poll';
    let failures = 0;
    let reported = false;
    while (!this.stopped) {
      if (upgradable && Date.now() - started >= this.settings.upgradeAfterMs) return { kind: 'resume' };
      try {
        const page = await this.host.pull(this.target.scope, cursor);
        if (this.stopped) break;
        if (!reported) this.report('poll', (reported = true));
        if (page.cursor > cursor) {
          await this.target.onChanges({ changes: page.changes, from: cursor, to: page.cursor });
          cursor = this.position = page.cursor;
        }
        failures = 0;
        if (!page.has_more) await sleep(this.settings.pollIntervalMs, this.abort.signal);
      } catch (error) {
        const end = this.endFor(error);
        if (end.kind === 'fatal') return end;
        failures += 1;
        const retryAfter = isSyncProviderError(error) ? error.retryAfterMs : null;
        await sleep(backoffDelay(failures, this.settings.backoff, this.settings.random, retryAfter), this.abort.signal);
      }
    }
    return { kind: 'dropped' };
  }

  /**
   * Handles one server frame. `hello` is set on a WebSocket, which can start
   * over on the same connection; an event stream ends instead.
   */
  private async onFrame(frame: ServerFrame | ChangesFrame, hello: ((cursor: number) => void) | null): Promise<SessionEnd | null> {
    switch (frame.type) {
      case 'changes':
        await this.deliver(frame as ChangesFrame);
        return null;
      case 'poke':
        // Too far behind: the server stays quiet until the next hello. Pull, then say hello again.
        await this.catchUp();
        if (!hello) return { kind: 'resume' };
        hello(await this.resumeCursor());
        return null;
      case 'error':
        return this.endForErrorFrame(frame as ServerFrame);
      default:
        return null;
    }
  }

  /** Hands a frame to the engine: pulls first when it does not follow the last one, skips what was seen. */
  private async deliver(frame: ChangesFrame): Promise<void> {
    if (!Number.isFinite(frame.from) || !Number.isFinite(frame.to) || !Array.isArray(frame.changes)) {
      throw new SyncProviderError({ code: 'invalid_response', message: 'malformed changes frame', status: 0 });
    }
    if (frame.to <= this.position) return;
    if (frame.from > this.position) {
      // A gap between frames: pull what is missing.
      await this.catchUp();
      if (frame.to <= this.position) return;
    }
    const from = Math.max(frame.from, this.position);
    const changes = frame.from < from ? frame.changes.filter((c) => c.server_version > from) : frame.changes;
    if (this.stopped) return;
    await this.target.onChanges({ changes, from, to: frame.to });
    this.position = frame.to;
  }

  /** Pulls from the applied cursor until the server has no more, handing each page to the engine. */
  private async catchUp(): Promise<void> {
    let cursor = await this.resumeCursor();
    for (;;) {
      const before = cursor;
      const page = await this.host.pull(this.target.scope, before);
      if (this.stopped) return;
      if (page.cursor > before) {
        await this.target.onChanges({ changes: page.changes, from: before, to: page.cursor });
        cursor = this.position = page.cursor;
      }
      if (!page.has_more || page.cursor <= before) return;
    }
  }

  /** The session end a classification says, asking for a fresh token first when it says so. */
  private noteEnd(ending: Ending): SessionEnd {
    if (ending.refreshToken) this.forceTokenRefresh = true;
    return ending.end;
  }

  private endForErrorFrame(frame: ServerFrame): SessionEnd {
    return this.noteEnd(endingForErrorFrame(frame));
  }

  private endForStatus(response: Response, code: unknown = null): SessionEnd {
    return this.noteEnd(endingForStatus(response, code));
  }

  private endFor(error: unknown): SessionEnd {
    return this.noteEnd(endingForFailure(error));
  }
}

/** The error code in a refused request's JSON body (`{ "error": { "code" } }`), or null. */
async function refusalCode(response: Response): Promise<unknown> {
  if (response.ok) {
    await response.body?.cancel().catch(() => {});
    return null;
  }
  const body = (await response.json().catch(() => null)) as { error?: { code?: unknown } } | null;
  return body?.error?.code ?? null;
}
