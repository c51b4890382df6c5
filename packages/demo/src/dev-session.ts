/**
 * Who is using the demo: a user name picked on the sign-in screen and a dev
 * token for it (`POST /v1/dev/token`, dev-auth mode only). Both are kept in
 * `localStorage`, so reloads and the device's other tabs keep the user, and a
 * reload while offline still opens the local data.
 */
import type { GetToken } from '@or3/sync-client';

/** `localStorage` key of the signed-in user (tabs watch it to follow sign-in and sign-out). */
export const USER_KEY = 'or3-demo:user';
const tokenKey = (userId: string) => `or3-demo:token:${userId}`;

/** User ids the server accepts: the protocol's primary key rules. */
export const USER_ID_PATTERN = '[A-Za-z0-9_\\-]{1,64}';

/** The signed-in user of this device, if any. */
export function currentUser(): string | null {
  return localStorage.getItem(USER_KEY);
}

/** Signs `userId` in: fetches a token now, so a bad name fails on the sign-in screen. */
export async function signIn(userId: string): Promise<DevSession> {
  const session = new DevSession(userId);
  await session.getToken({ forceRefresh: true });
  localStorage.setItem(USER_KEY, userId);
  return session;
}

/** Forgets the user of this device (`signOutOfBrowser` has removed their workspaces' local data first). */
export function signOut(): void {
  const user = currentUser();
  if (user) localStorage.removeItem(tokenKey(user));
  localStorage.removeItem(USER_KEY);
}

/** A signed-in user and their token source. */
export class DevSession {
  constructor(readonly userId: string) {}

  /** The bearer token; a fresh one after a 401 (`forceRefresh`) or when none is stored. */
  readonly getToken: GetToken = async ({ forceRefresh }) => {
    const stored = localStorage.getItem(tokenKey(this.userId));
    if (stored && !forceRefresh) return stored;
    const response = await fetch('/v1/dev/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: this.userId }),
    });
    const body = (await response.json().catch(() => null)) as { token?: string; error?: { message?: string } } | null;
    if (!response.ok || typeof body?.token !== 'string') {
      throw new Error(body?.error?.message ?? `the server refused a dev token (HTTP ${response.status})`);
    }
    localStorage.setItem(tokenKey(this.userId), body.token);
    return body.token;
  };
}
