/**
 * The provider's settings, from Nuxt runtime config (`runtimeConfig.or3sync`)
 * or the environment; each is documented in the package README.
 */

export interface Or3SyncConfig {
  /** `OR3SYNC_URL`: the gateway's base URL, e.g. `http://127.0.0.1:8787`. */
  url: string;
  /** `OR3SYNC_SIGNING_KEY`: a PKCS#8 PEM RSA private key; the gateway runs with its public half (`--jwt-public-key`). */
  signingKey: string;
  /** `OR3SYNC_ISSUER`: the `iss` of minted tokens; the gateway's `--jwt-issuer`. */
  issuer: string;
  /** `OR3SYNC_KEY_ID`: optional `kid` header, for a gateway verifying against a JWKS. */
  keyId?: string;
  /** `OR3SYNC_TOKEN_TTL_SECONDS`: lifetime of a minted token (default 60). */
  tokenTtlSeconds: number;
  /** `OR3SYNC_TIMEOUT_MS`: deadline of each gateway request (default 10 000). */
  requestTimeoutMs: number;
  /** `OR3SYNC_PUBLIC_URL`: the gateway URL as browsers reach it for the realtime WebSocket (default `url`). */
  publicUrl: string;
}

/** A setting that is missing or malformed; names it. */
export class Or3SyncConfigError extends Error {
  override name = 'Or3SyncConfigError';
}

type Source = Record<string, unknown>;

const text = (value: unknown): string | undefined => (typeof value === 'string' && value.trim() !== '' ? value : undefined);

function positive(name: string, value: unknown, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Or3SyncConfigError(`${name} must be a positive number, got ${String(value)}`);
  return n;
}

/**
 * Reads the settings: runtime config keys (`url`, `signingKey`, `issuer`,
 * `keyId`, `tokenTtlSeconds`, `requestTimeoutMs`, `publicUrl`) win over the
 * `OR3SYNC_*` variables. PEM keys given with literal `\n` (one-line env files)
 * are unescaped.
 */
export function resolveConfig(runtime: Source = {}, env: Source = process.env): Or3SyncConfig {
  const pick = (key: string, envName: string) => text(runtime[key]) ?? text(env[envName]);
  const url = pick('url', 'OR3SYNC_URL');
  const signingKey = pick('signingKey', 'OR3SYNC_SIGNING_KEY');
  const issuer = pick('issuer', 'OR3SYNC_ISSUER');
  if (!url) throw new Or3SyncConfigError('OR3SYNC_URL (runtimeConfig.or3sync.url) is required');
  if (!signingKey) throw new Or3SyncConfigError('OR3SYNC_SIGNING_KEY (runtimeConfig.or3sync.signingKey) is required');
  if (!issuer) throw new Or3SyncConfigError('OR3SYNC_ISSUER (runtimeConfig.or3sync.issuer) is required');
  const base = url.replace(/\/+$/, '');
  return {
    url: base,
    signingKey: signingKey.replace(/\\n/g, '\n'),
    issuer,
    keyId: pick('keyId', 'OR3SYNC_KEY_ID'),
    tokenTtlSeconds: positive('OR3SYNC_TOKEN_TTL_SECONDS', runtime.tokenTtlSeconds ?? env.OR3SYNC_TOKEN_TTL_SECONDS, 60),
    requestTimeoutMs: positive('OR3SYNC_TIMEOUT_MS', runtime.requestTimeoutMs ?? env.OR3SYNC_TIMEOUT_MS, 10_000),
    publicUrl: (pick('publicUrl', 'OR3SYNC_PUBLIC_URL') ?? base).replace(/\/+$/, ''),
  };
}
