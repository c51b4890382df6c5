/**
 * The app's token getter. Functions cannot travel through `nuxt.config`, so
 * the app registers one at run time (usually in a client plugin of its own,
 * from Clerk's `getToken`); requests made before that fail with a clear error.
 */
import type { GetToken } from '@or3/sync-client';

let appGetToken: GetToken | null = null;

/** Sets the token getter every sync request uses (call again to replace it, e.g. on sign-in). */
export function defineSyncTokenGetter(getToken: GetToken): void {
  appGetToken = getToken;
}

/** The `GetToken` handed to the provider: forwards to the app's getter. */
export const syncToken: GetToken = (options) => {
  if (!appGetToken) {
    return Promise.reject(new Error('or3-sync: no token getter: call defineSyncTokenGetter(getToken) in a client plugin'));
  }
  return appGetToken(options);
};
