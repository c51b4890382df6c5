/**
 * The seam between the app's auth and the Convex provider: the app owns
 * sign-in and hands the provider a broker that mints tokens for Convex.
 */

/** Gets a token the Convex deployment accepts (checked against `convex/auth.config.ts`). */
export interface AuthTokenBroker {
  /**
   * A current token, or null when the user is signed out. `forceRefresh` is
   * true when Convex refused the last token (expired or revoked): skip any cache.
   */
  getToken(options: { forceRefresh: boolean }): Promise<string | null>;
}

/** The part of a Clerk session (or `useAuth()`) the broker needs. */
export interface ClerkTokenSource {
  getToken(options: { template?: string; skipCache?: boolean }): Promise<string | null>;
}

/**
 * A broker over Clerk: `getToken({ template: 'convex' })`, skipping Clerk's
 * cache when Convex asks for a fresh token.
 */
export function clerkTokenBroker(clerk: ClerkTokenSource, template = 'convex'): AuthTokenBroker {
  return {
    getToken: ({ forceRefresh }) => clerk.getToken({ template, skipCache: forceRefresh }),
  };
}
