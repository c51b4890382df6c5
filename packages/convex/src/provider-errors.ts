/**
 * Maps what a Convex call throws to the client's `SyncProviderError`, with
 * the HTTP status the gateway would answer, so the engine treats both
 * backends alike (back off on 5xx, rescan on 410, split on 413, pause on 403).
 */
import { SyncProviderError } from '@or3/sync-client';
import { ConvexError } from 'convex/values';
import type { RequestErrorData } from '../convex/lib/errors.js';

const STATUS_BY_CODE: Record<string, number> = {
  invalid_input: 400,
  unauthorized: 401,
  forbidden: 403,
  unknown_workspace: 404,
  not_found: 404,
  last_owner: 409,
  cursor_expired: 410,
  batch_too_large: 413,
  payload_too_large: 413,
  rate_limited: 429,
};

/** The `SyncProviderError` for anything a Convex call rejected with. */
export function toSyncProviderError(error: unknown): SyncProviderError {
  if (error instanceof SyncProviderError) return error;
  const data = requestErrorData(error);
  if (data !== null) {
    return new SyncProviderError({
      code: data.code,
      message: data.message,
      status: STATUS_BY_CODE[data.code] ?? 500,
      field: data.field ?? null,
      oldestRetainedVersion: data.oldest_retained_version ?? null,
      cause: error,
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  if (message.includes('ArgumentValidationError')) {
    return new SyncProviderError({ code: 'invalid_input', message, status: 400, cause: error });
  }
  // Not one of ours: a server error. Convex retries lost connections itself,
  // so what reaches us is worth a backoff.
  return new SyncProviderError({ code: 'store_unavailable', message, status: 503, cause: error });
}

/** The data of a `ConvexError` thrown by our functions, or null. */
export function requestErrorData(error: unknown): RequestErrorData | null {
  const data = error instanceof ConvexError ? error.data : (error as { data?: unknown } | null)?.data;
  if (typeof data !== 'object' || data === null) return null;
  const { code, message } = data as { code?: unknown; message?: unknown };
  if (typeof code !== 'string' || typeof message !== 'string') return null;
  return data as RequestErrorData;
}
