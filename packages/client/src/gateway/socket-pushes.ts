/**
 * Pushes sent as frames on a subscription's open WebSocket (PROTOCOL.md
 * section 4, "Subscribe"), for a gateway that announced them (the
 * subprotocol `or3-sync.v1+push`): each push goes out as
 * `{"type":"push","id","ops"}` and settles on the `push_result` or
 * `push_error` frame with its id. A push the socket cannot answer (the socket
 * closed, or no answer within the request deadline) fails as a
 * `network_error`, as an HTTP push without an answer does, and the engine
 * retries it with the same op ids (a push is idempotent). A refusal the HTTP
 * route would not give (a push before the hello was accepted) or one HTTP
 * answers better (an expired token, which HTTP retries under a fresh one)
 * settles as `fallback`: the provider sends that push over HTTP instead.
 */
import { SyncProviderError } from '../provider.js';
import { errorFromWire, type WireErrorFields } from './wire-error.js';
import type { PushOp, PushResponse } from '@or3/sync-protocol';

/**
 * Largest push frame sent on the socket, in UTF-8 bytes: within what every gateway that takes
 * pushes reads (64 KiB at least). A larger push goes over HTTP; it gains little from the socket,
 * its time being its transfer and commit.
 */
export const SOCKET_PUSH_MAX_BYTES = 60 << 10;

/** What a push on the socket came to: its answer, or "send it over HTTP". */
export type SocketPushOutcome = { kind: 'answered'; response: PushResponse } | { kind: 'fallback' };

/** A `push_result` or `push_error` frame, fields unchecked. */
export interface PushAnswerFrame {
  type: 'push_result' | 'push_error';
  id?: unknown;
  results?: unknown;
  server_version?: unknown;
  server_time?: unknown;
  status?: unknown;
  error?: WireErrorFields;
  retry_after?: unknown;
  /** The push rate limit's budget, as the HTTP answer's `RateLimit-*` headers: `{limit, remaining, reset}`. */
  rate_limit?: unknown;
}

/** Whether a parsed frame is a push's answer. */
export function isPushAnswer(frame: { type?: unknown }): frame is PushAnswerFrame {
  return frame.type === 'push_result' || frame.type === 'push_error';
}

interface Pending {
  resolve(outcome: SocketPushOutcome): void;
  reject(error: SyncProviderError): void;
  timer: ReturnType<typeof setTimeout>;
}

/** The pushes in flight on one socket. */
export class SocketPushes {
  private readonly pending = new Map<string, Pending>();
  private next = 0;
  private closed = false;

  constructor(
    private readonly sendFrame: (text: string) => void,
    private readonly timeoutMs: number,
    /** Whether the socket is open now (it may be closing before its close event). */
    private readonly socketOpen: () => boolean,
    /** Told an answer's `rate_limit.remaining`, as an HTTP answer's `RateLimit-Remaining` is read. */
    private readonly onRateLimitRemaining: (remaining: number) => void,
  ) {}

  /** Whether this socket takes pushes now. */
  get open(): boolean {
    return !this.closed && this.socketOpen();
  }

  /**
   * Sends `ops` as one push frame; null when the socket is closing or the frame is too large for
   * it (the caller pushes over HTTP). Rejects with a `network_error` when the socket closes or stays silent
   * past the deadline, and with the HTTP route's error for a refusal.
   */
  push(ops: PushOp[]): Promise<SocketPushOutcome> | null {
    if (!this.open) return null;
    const id = `p${++this.next}`;
    const text = JSON.stringify({ type: 'push', id, ops });
    if (text.length * 3 > SOCKET_PUSH_MAX_BYTES && new TextEncoder().encode(text).length > SOCKET_PUSH_MAX_BYTES) return null;
    return new Promise<SocketPushOutcome>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(networkError(`push on the socket got no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      try {
        this.sendFrame(text);
      } catch (cause) {
        this.settle(id, (p) => p.reject(networkError('push on the socket could not be sent', cause)));
      }
    });
  }

  /** Settles the push a `push_result` or `push_error` frame answers (unknown ids are ignored). */
  answer(frame: PushAnswerFrame): void {
    if (typeof frame.id !== 'string') return;
    this.settle(frame.id, (pending) => {
      const remaining = rateLimitRemaining(frame);
      if (remaining !== null) this.onRateLimitRemaining(remaining);
      if (frame.type === 'push_result') {
        if (!Array.isArray(frame.results) || typeof frame.server_version !== 'number') {
          pending.reject(new SyncProviderError({ code: 'invalid_response', message: 'malformed push_result frame', status: 0 }));
          return;
        }
        const response: PushResponse = {
          results: frame.results as PushResponse['results'],
          server_version: frame.server_version,
          server_time: typeof frame.server_time === 'number' ? frame.server_time : Date.now(),
        };
        pending.resolve({ kind: 'answered', response });
        return;
      }
      const status = typeof frame.status === 'number' ? frame.status : 0;
      const code = frame.error?.code;
      // Before the hello was accepted (400 invalid_frame), or a token the socket holds expired
      // (401): HTTP says it better, under a fresh token if need be.
      if (status === 401 || code === 'invalid_frame') {
        pending.resolve({ kind: 'fallback' });
        return;
      }
      pending.reject(
        errorFromWire({
          status,
          error: frame.error,
          retryAfterMs: typeof frame.retry_after === 'number' ? Math.max(0, frame.retry_after * 1000) : null,
          rateLimitRemaining: remaining,
        }),
      );
    });
  }

  /** The socket is closing: no new pushes, and those in flight fail as network errors. */
  close(): void {
    this.closed = true;
    for (const id of [...this.pending.keys()]) {
      this.settle(id, (pending) => pending.reject(networkError('the socket closed before the push was answered')));
    }
  }

  private settle(id: string, act: (pending: Pending) => void): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    act(pending);
  }
}

/** `rate_limit.remaining` of an answer, when it carries a number there. */
function rateLimitRemaining(frame: PushAnswerFrame): number | null {
  const remaining = (frame.rate_limit as { remaining?: unknown } | null | undefined)?.remaining;
  return typeof remaining === 'number' && Number.isFinite(remaining) ? remaining : null;
}

function networkError(message: string, cause?: unknown): SyncProviderError {
  return new SyncProviderError({ code: 'network_error', message, status: 0, cause });
}
