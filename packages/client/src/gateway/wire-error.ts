/**
 * A gateway's refusal as a `SyncProviderError`, however it came: an HTTP
 * answer (its status, `{"error":{…}}` body and headers) or a `push_error`
 * frame on the subscription's socket (the same status and error, with
 * `retry_after` and `rate_limit` in place of the headers). One mapping, so a
 * push refused on the socket fails exactly as the same push refused over HTTP.
 */
import { isSyncErrorCode, type SyncErrorCode } from '@or3/sync-protocol';
import { SyncProviderError } from '../provider.js';

/** The code of a refusal whose answer named none this client knows, by its status. */
const STATUS_CODES: Record<number, SyncErrorCode> = {
  400: 'invalid_input',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  410: 'cursor_expired',
  413: 'payload_too_large',
  429: 'rate_limited',
  503: 'store_unavailable',
};

/** The wire's `error` object, fields unchecked. */
export interface WireErrorFields {
  code?: unknown;
  message?: unknown;
  field?: unknown;
}

/** What a refusal carried, read from an HTTP answer or a frame. */
export interface WireRefusal {
  /** The HTTP status (the one the HTTP route would have answered, for a frame). */
  status: number;
  /** The answer's `error` object, when it had one. */
  error?: WireErrorFields | null;
  /** `Retry-After`, in ms. */
  retryAfterMs?: number | null;
  /** `RateLimit-Remaining`. */
  rateLimitRemaining?: number | null;
  /** A 410's `oldest_retained_version`. */
  oldestRetainedVersion?: number | null;
}

/** The error a refusal is: the server's code when this client knows it, else the status's. */
export function errorFromWire(refusal: WireRefusal): SyncProviderError {
  const { status, error } = refusal;
  return new SyncProviderError({
    code: isSyncErrorCode(error?.code) ? error.code : (STATUS_CODES[status] ?? (status >= 500 ? 'internal' : 'invalid_input')),
    message: typeof error?.message === 'string' ? error.message : `HTTP ${status}`,
    status,
    retryAfterMs: refusal.retryAfterMs ?? null,
    rateLimitRemaining: refusal.rateLimitRemaining ?? null,
    oldestRetainedVersion: refusal.oldestRetainedVersion ?? null,
    field: typeof error?.field === 'string' ? error.field : null,
  });
}
