/**
 * Server-to-server calls to the or3-sync gateway: each request carries a
 * short-lived RS256 token minted for the acting user (`sub`), never a shared
 * secret, and a deadline. A failure becomes a `GatewayError` with the
 * gateway's code, status and `Retry-After`.
 */
import { importPKCS8, SignJWT, type CryptoKey } from 'jose';
import type { Or3SyncConfig } from './config.js';
import type { GatewayErrorBody } from './gateway-wire.js';

/** A gateway answer other than success, or no answer at all (`status` 0). */
export class GatewayError extends Error {
  override name = 'GatewayError';
  constructor(
    /** HTTP status; 0 when the gateway was not reached or did not answer in time. */
    readonly status: number,
    /** The gateway's error code (`network_error` / `timeout` when unreachable). */
    readonly code: string,
    message: string,
    readonly field?: string,
    /** Seconds, from the gateway's `Retry-After`. */
    readonly retryAfter?: string,
    readonly oldestRetainedVersion?: number,
  ) {
    super(message);
  }
}

export interface GatewayRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  /** The user the token is minted for. */
  userId: string;
  body?: unknown;
  deviceId?: string;
}

/** Mints tokens and sends requests to one gateway. */
export class GatewayClient {
  private key: Promise<CryptoKey> | undefined;

  constructor(readonly config: Or3SyncConfig) {}

  /** A token for `userId`, valid `tokenTtlSeconds`. */
  async mintToken(userId: string): Promise<{ token: string; expiresAt: number }> {
    this.key ??= importPKCS8(this.config.signingKey, 'RS256');
    const now = Math.floor(Date.now() / 1000);
    const expiresAt = now + this.config.tokenTtlSeconds;
    const header = this.config.keyId ? { alg: 'RS256', kid: this.config.keyId } : { alg: 'RS256' };
    const token = await new SignJWT({})
      .setProtectedHeader(header)
      .setSubject(userId)
      .setIssuer(this.config.issuer)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(expiresAt)
      .sign(await this.key);
    return { token, expiresAt: expiresAt * 1000 };
  }

  /** Sends one request; resolves with the parsed JSON body (null for 204). */
  async request<T>(req: GatewayRequest): Promise<T> {
    const { token } = await this.mintToken(req.userId);
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    if (req.deviceId) headers['x-device-id'] = req.deviceId;
    let response: Response;
    try {
      response = await fetch(`${this.config.url}${req.path}`, {
        method: req.method,
        headers,
        body: req.body === undefined ? undefined : JSON.stringify(req.body),
        signal: AbortSignal.timeout(this.config.requestTimeoutMs),
      });
    } catch (error) {
      const timedOut = error instanceof Error && error.name === 'TimeoutError';
      throw new GatewayError(
        0,
        timedOut ? 'timeout' : 'network_error',
        timedOut ? `the gateway did not answer within ${this.config.requestTimeoutMs} ms` : `the gateway is unreachable: ${String(error)}`,
      );
    }
    const text = await response.text();
    if (!response.ok) {
      const detail = parseErrorBody(text);
      throw new GatewayError(
        response.status,
        detail.code ?? `http_${response.status}`,
        detail.message ?? (text.slice(0, 200) || response.statusText),
        detail.field,
        response.headers.get('retry-after') ?? undefined,
        detail.oldest_retained_version,
      );
    }
    return (text ? JSON.parse(text) : null) as T;
  }
}

function parseErrorBody(text: string): NonNullable<GatewayErrorBody['error']> {
  try {
    return (JSON.parse(text) as GatewayErrorBody).error ?? {};
  } catch {
    return {};
  }
}
