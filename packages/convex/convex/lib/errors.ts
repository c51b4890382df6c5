/**
 * Request-level errors of the Convex functions. Each is a `ConvexError` whose
 * data is the wire error object of PROTOCOL.md section 4
 * (`{code, message, field?, oldest_retained_version?}`), so the provider maps
 * it to the same `SyncProviderError` the gateway's HTTP answers give.
 */
import { ConvexError } from 'convex/values';

/** Codes a Convex function throws for a whole request: codes of docs/ERRORS.md, the gateway's where it has one. */
export type RequestErrorCode =
  /** No identity: the caller sent no token or an invalid one (HTTP 401). */
  | 'unauthorized'
  /** Not a member of the workspace, or the role is too low (HTTP 403). */
  | 'forbidden'
  /** Unknown workspace (HTTP 404), the gateway's code. */
  | 'unknown_workspace'
  /** Unknown member or record (HTTP 404). */
  | 'not_found'
  /** Malformed arguments: a bad cursor, limit, device id or page token (HTTP 400). */
  | 'invalid_input'
  /** The cursor is older than the retained log; rescan (HTTP 410). */
  | 'cursor_expired'
  /**
   * The batch would exceed a Convex transaction limit (ops, bytes read or
   * written, answer size). Nothing was committed; split it and push again (HTTP 413).
   */
  | 'batch_too_large'
  /** The change would leave a workspace without an owner (HTTP 409). */
  | 'last_owner';

/** The data carried by every error our functions throw. */
export interface RequestErrorData {
  code: RequestErrorCode;
  message: string;
  field?: string;
  oldest_retained_version?: number;
}

/** Builds the `ConvexError` for a request-level failure. */
export function requestError(
  code: RequestErrorCode,
  message: string,
  extra: { field?: string; oldest_retained_version?: number } = {},
): ConvexError<RequestErrorData & Record<string, string | number>> {
  return new ConvexError({ code, message, ...extra });
}
