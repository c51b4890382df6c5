/**
 * The one mapping from gateway failures to OR3's codes: per op (a push
 * result's `errorCode`) and per request (the h3 error OR3's route answers
 * with, `Retry-After` passed on).
 */
import { createError, setResponseHeader, type H3Event } from 'h3';
import { GatewayError, type GatewayClient, type GatewayRequest } from './gateway-client.js';
import type { SyncErrorCode } from './or3-types.js';

/**
 * A rejected op's code. `clock_skew` (the device's clock is over five minutes
 * ahead of the gateway's) is retried: the op is accepted once real time
 * catches up with its stamp, and OR3's engine does not re-stamp. Reusing an
 * op id for other content can never succeed: `CONFLICT`, permanent.
 */
export function rejectionCode(gatewayCode: string): SyncErrorCode {
  switch (gatewayCode) {
    case 'unknown_table':
    case 'invalid_pk':
    case 'pk_mismatch':
    case 'invalid_hlc':
    case 'invalid_op':
      return 'VALIDATION_ERROR';
    case 'payload_too_large':
      return 'OVERSIZED';
    case 'op_id_reused':
      return 'CONFLICT';
    case 'clock_skew':
      return 'RATE_LIMITED';
    default:
      return 'UNKNOWN';
  }
}

/** A whole request's failure: OR3's code and the status its route answers with. */
export function requestFailure(error: GatewayError): { code: SyncErrorCode; statusCode: number } {
  switch (error.status) {
    case 0:
      return { code: 'NETWORK_ERROR', statusCode: error.code === 'timeout' ? 504 : 502 };
    case 400:
      return { code: 'VALIDATION_ERROR', statusCode: 400 };
    case 401:
    case 403:
      return { code: 'UNAUTHORIZED', statusCode: error.status };
    case 404:
      return { code: 'NOT_FOUND', statusCode: 404 };
    case 409:
    case 410:
      return { code: 'CONFLICT', statusCode: error.status };
    case 413:
      return { code: 'OVERSIZED', statusCode: 413 };
    case 429:
      return { code: 'RATE_LIMITED', statusCode: 429 };
    case 503:
      return { code: 'SERVER_ERROR', statusCode: 503 };
    default:
      return { code: 'SERVER_ERROR', statusCode: 502 };
  }
}

/**
 * Rethrows `error` as the h3 error OR3's route answers with: a gateway
 * failure with OR3's code in `data.code` (the gateway's in `data.gatewayCode`,
 * its `field` kept) and `Retry-After` set on the response; anything else as is.
 */
export function rethrowForOr3(event: H3Event | undefined, error: unknown): never {
  if (!(error instanceof GatewayError)) throw error;
  const { code, statusCode } = requestFailure(error);
  const retryAfter = Number(error.retryAfter);
  if (event && error.retryAfter !== undefined && Number.isFinite(retryAfter)) setResponseHeader(event, 'Retry-After', retryAfter);
  throw createError({
    statusCode,
    statusMessage: `or3-sync: ${error.message}`.slice(0, 200).replace(/[\r\n]/g, ' '),
    data: { code, gatewayCode: error.code, field: error.field, retryAfter: error.retryAfter },
  });
}

/** One gateway request whose failure is OR3's (see `rethrowForOr3`). */
export async function requestForOr3<T>(client: GatewayClient, event: H3Event | undefined, req: GatewayRequest): Promise<T> {
  try {
    return await client.request<T>(req);
  } catch (error) {
    return rethrowForOr3(event, error);
  }
}
