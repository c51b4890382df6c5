/**
 * How a subscription's transport session ends, and what the server's frames,
 * HTTP statuses and failed pulls mean for it: pure classification, so
 * `GatewaySubscription` only acts on the answer.
 */
import { isSyncErrorCode, type Change, type SyncErrorCode } from '@or3/sync-protocol';
import { SyncProviderError, isSyncProviderError } from '../provider.js';

/** How a transport session ended, and so what comes next. */
export type SessionEnd =
  /** The connection never got going: counts toward stepping down. */
  | { kind: 'connect_failed'; retryAfterMs?: number | null }
  /** A working connection ended (dropped, server restarting): reconnect after a short wait. */
  | { kind: 'dropped' }
  /** Reconnect at once (after a poke on SSE, a refreshed token, an upgrade). */
  | { kind: 'resume' }
  /** Something other than the connection failed (a pull, the engine's apply): back off, same transport. */
  | { kind: 'failed'; retryAfterMs?: number | null }
  /** The subscription is over: tell the engine. */
  | { kind: 'fatal'; error: SyncProviderError };

/** A session end, and whether the next connect must fetch a fresh token (the server refused this one). */
export interface Ending {
  end: SessionEnd;
  refreshToken: boolean;
}

/** A `changes` frame: the log from `from` (exclusive) to `to`. */
export interface ChangesFrame {
  type: 'changes';
  from: number;
  to: number;
  changes: Change[];
}

/** Any other frame, fields unchecked. */
export interface ServerFrame {
  type?: unknown;
  code?: unknown;
  message?: unknown;
  oldest_retained_version?: unknown;
}

const ending = (end: SessionEnd, refreshToken = false): Ending => ({ end, refreshToken });

/** What an `error` frame from the server means for the session. */
export function endingForErrorFrame(frame: ServerFrame): Ending {
  const code = isSyncErrorCode(frame.code) ? frame.code : 'internal';
  const message = typeof frame.message === 'string' ? frame.message : code;
  switch (code) {
    case 'cursor_expired': {
      const oldest = typeof frame.oldest_retained_version === 'number' ? frame.oldest_retained_version : null;
      return ending({
        kind: 'fatal',
        error: new SyncProviderError({ code, message, status: 410, oldestRetainedVersion: oldest }),
      });
    }
    case 'forbidden':
      return ending({ kind: 'fatal', error: new SyncProviderError({ code, message, status: 403 }) });
    case 'unknown_workspace':
    case 'not_found':
      return ending({ kind: 'fatal', error: new SyncProviderError({ code, message, status: 404 }) });
    case 'token_expired':
      return ending({ kind: 'resume' }, true);
    case 'shutting_down':
      return ending({ kind: 'dropped' });
    default:
      // A refused token, a store hiccup, or a frame the server did not like: reconnect with backoff.
      return ending(
        { kind: 'connect_failed' },
        code === 'unauthorized' || code.startsWith('invalid_token') || code === 'missing_token',
      );
  }
}

/**
 * What a refused subscribe or events request (its HTTP status) means for the session. `code` is
 * the error code of the answer's body when it had one (an events request can read it; a
 * WebSocket upgrade cannot): a 404 is then `unknown_workspace` as the server said, not `not_found`.
 */
export function endingForStatus(response: Response, code: unknown = null): Ending {
  const named = (fallback: SyncErrorCode): SyncErrorCode => (isSyncErrorCode(code) ? code : fallback);
  switch (response.status) {
    case 401:
      return ending({ kind: 'connect_failed' }, true);
    case 403:
      return ending({ kind: 'fatal', error: new SyncProviderError({ code: named('forbidden'), message: 'HTTP 403', status: 403 }) });
    case 404:
      return ending({ kind: 'fatal', error: new SyncProviderError({ code: named('not_found'), message: 'HTTP 404', status: 404 }) });
    case 410:
      return ending({
        kind: 'fatal',
        error: new SyncProviderError({ code: 'cursor_expired', message: 'HTTP 410', status: 410 }),
      });
    default: {
      const retryAfter = Number(response.headers.get('retry-after'));
      return ending({ kind: 'connect_failed', retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : null });
    }
  }
}

/**
 * What a failed pull or apply means: `cursor_expired`, 403, 404 and other
 * permanent errors end the subscription; the rest back off and go on.
 */
export function endingForFailure(error: unknown): Ending {
  if (!isSyncProviderError(error)) return ending({ kind: 'failed' });
  if (error.status === 401) return ending({ kind: 'failed' }, true);
  if (!error.retryable) return ending({ kind: 'fatal', error });
  return ending({ kind: 'failed', retryAfterMs: error.retryAfterMs });
}

/** A frame's JSON; anything that is not an object is an empty frame (ignored). */
export function parseFrame(text: string): ServerFrame | ChangesFrame {
  try {
    const frame = JSON.parse(text) as unknown;
    return typeof frame === 'object' && frame !== null ? (frame as ServerFrame) : {};
  } catch {
    return {};
  }
}
