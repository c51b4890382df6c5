/**
 * Reading a bearer token's expiry on the client, to refresh it before the
 * server ends a subscription with `token_expired`. The signature is not
 * checked: the value only schedules a refresh.
 */

/** `exp` (epoch seconds) of a JWT, or null for a token that is not a JWT or has no `exp`. */
export function tokenExpiry(token: string): number | null {
  const payload = token.split('.')[1];
  if (payload === undefined || payload === '') return null;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(payload.length / 4) * 4, '=');
    const claims = JSON.parse(atob(base64)) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp : null;
  } catch {
    return null;
  }
}
