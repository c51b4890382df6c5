/**
 * Reading a bearer token's claims on the client: `exp`, to refresh it before
 * the server ends a subscription with `token_expired`, and `sub`, to tell
 * whose token it is before pushing. The signature is not checked: the
 * values only schedule a refresh and keep the engine from pushing one user's
 * writes with another user's token; the server verifies every request.
 */

/** The payload of a JWT, or null for a token that is not one. */
function jwtClaims(token: string): Record<string, unknown> | null {
  const payload = token.split('.')[1];
  if (payload === undefined || payload === '') return null;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(payload.length / 4) * 4, '=');
    const claims = JSON.parse(atob(base64)) as unknown;
    return typeof claims === 'object' && claims !== null ? (claims as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** `exp` (epoch seconds) of a JWT, or null for a token that is not a JWT or has no `exp`. */
export function tokenExpiry(token: string): number | null {
  const exp = jwtClaims(token)?.exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp : null;
}

/** `sub` (the user id) of a JWT, or null for a token that is not a JWT or has no subject. */
export function tokenSubject(token: string): string | null {
  const sub = jwtClaims(token)?.sub;
  return typeof sub === 'string' && sub !== '' ? sub : null;
}
