/**
 * OR3's `AuthWorkspaceStore` on the gateway's workspaces and members.
 *
 * - **Users**: the gateway keeps no user table; a user is the token's `sub`,
 *   `<auth provider>:<provider user id>`, so mapping an identity needs no
 *   storage and is the same on every OR3 node.
 * - **Default workspace**: on first sign-in (the user is a member of none),
 *   one named "My Workspace" is created with the user as owner. Requests of
 *   one user that ask at the same moment (a page's parallel first requests)
 *   share one look-up-or-create in this process, so they do not make one each;
 *   two OR3 nodes racing the same first sign-in can still make two (the
 *   gateway chooses workspace ids, so there is no key to make creation idempotent).
 * - **Active workspace**: kept in the browser, in an HTTP-only cookie
 *   (`or3sync_active_workspace`) set by `setActiveWorkspace`, and checked
 *   against the gateway's membership on every read; without the cookie (or
 *   when the user is no longer a member) it is the user's first workspace in
 *   the gateway's list. The gateway has no per-user settings, and a
 *   per-browser choice needs no server state shared between OR3 nodes.
 * - Workspaces have no description on the gateway: `description` is ignored.
 */
import { deleteCookie, getCookie, setCookie, type H3Event } from 'h3';
import { requestForOr3, rethrowForOr3 } from './error-mapping.js';
import { GatewayError, type GatewayClient, type GatewayRequest } from './gateway-client.js';
import type { GatewayWorkspace } from './gateway-wire.js';
import type { AuthWorkspaceStore, WorkspaceRole, WorkspaceSummary } from './or3-types.js';

/** The cookie holding the active workspace id. */
export const ACTIVE_WORKSPACE_COOKIE = 'or3sync_active_workspace';
/** The name of the workspace created on first sign-in. */
export const DEFAULT_WORKSPACE_NAME = 'My Workspace';
const MAX_USER_ID = 256;

/** Look-ups of a default workspace in flight, by gateway URL and user: concurrent ones share one. */
const defaultInFlight = new Map<string, Promise<{ workspaceId: string; workspaceName: string; created: boolean }>>();

/** The gateway user (token `sub`) of an auth provider's user. */
export function userIdOf(provider: string, providerUserId: string): string {
  const userId = `${provider}:${providerUserId}`;
  if (!provider || !providerUserId || userId.length > MAX_USER_ID || /\p{Cc}/u.test(userId)) {
    throw new Error(`provider and providerUserId must make a user id of 1 to ${MAX_USER_ID} characters without control characters`);
  }
  return userId;
}

/** The store for one request; `event` (when OR3 passes it) carries the active-workspace cookie. */
export function createOr3SyncWorkspaceStore(client: GatewayClient, event?: H3Event): AuthWorkspaceStore {
  const call = <T>(req: GatewayRequest): Promise<T> => requestForOr3<T>(client, event, req);
  const path = (workspaceId: string) => `/v1/workspaces/${encodeURIComponent(workspaceId)}`;
  const list = async (userId: string) =>
    (await call<{ workspaces: GatewayWorkspace[] }>({ method: 'GET', path: '/v1/workspaces', userId })).workspaces;
  const cookieWorkspace = () => (event ? getCookie(event, ACTIVE_WORKSPACE_COOKIE) : undefined);
  /** The active workspace among `workspaces` (see the module note). */
  const activeOf = (workspaces: GatewayWorkspace[]) =>
    workspaces.find((w) => w.workspace_id === cookieWorkspace()) ?? workspaces[0];

  return {
    async getOrCreateUser(input) {
      return { userId: userIdOf(input.provider, input.providerUserId) };
    },

    async getOrCreateDefaultWorkspace(userId) {
      const key = `${client.config.url}\u0000${userId}`;
      const shared = defaultInFlight.get(key);
      // A request that joins another's look-up did not create the workspace itself.
      if (shared) return { ...(await shared), created: false };
      const lookUp = (async () => {
        const active = activeOf(await list(userId));
        if (active) return { workspaceId: active.workspace_id, workspaceName: active.name, created: false };
        const made = await call<GatewayWorkspace>({ method: 'POST', path: '/v1/workspaces', userId, body: { name: DEFAULT_WORKSPACE_NAME } });
        return { workspaceId: made.workspace_id, workspaceName: made.name, created: true };
      })();
      defaultInFlight.set(key, lookUp);
      try {
        return await lookUp;
      } finally {
        defaultInFlight.delete(key);
      }
    },

    async getWorkspaceRole({ userId, workspaceId }): Promise<WorkspaceRole | null> {
      try {
        return (await client.request<GatewayWorkspace>({ method: 'GET', path: path(workspaceId), userId })).role;
      } catch (error) {
        // Not a member, or no such workspace: no access.
        if (error instanceof GatewayError && (error.status === 403 || error.status === 404)) return null;
        return rethrowForOr3(event, error);
      }
    },

    async listUserWorkspaces(userId): Promise<WorkspaceSummary[]> {
      const workspaces = await list(userId);
      const active = activeOf(workspaces);
      return workspaces.map((w) => ({ id: w.workspace_id, name: w.name, role: w.role, isActive: w === active }));
    },

    async createWorkspace({ userId, name }) {
      const made = await call<GatewayWorkspace>({ method: 'POST', path: '/v1/workspaces', userId, body: { name } });
      return { workspaceId: made.workspace_id };
    },

    async updateWorkspace({ userId, workspaceId, name }) {
      await call({ method: 'PATCH', path: path(workspaceId), userId, body: { name } });
    },

    async removeWorkspace({ userId, workspaceId }) {
      await call({ method: 'DELETE', path: path(workspaceId), userId });
      if (event && cookieWorkspace() === workspaceId) deleteCookie(event, ACTIVE_WORKSPACE_COOKIE, { path: '/' });
    },

    async setActiveWorkspace({ userId, workspaceId }) {
      // Membership first: a non-member gets the gateway's 403/404.
      await call({ method: 'GET', path: path(workspaceId), userId });
      if (event) {
        setCookie(event, ACTIVE_WORKSPACE_COOKIE, workspaceId, { httpOnly: true, sameSite: 'lax', path: '/', maxAge: 60 * 60 * 24 * 365 });
      }
    },
  };
}
