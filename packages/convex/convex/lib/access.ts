/**
 * Who the caller is and what they may do in a workspace. Identity comes from
 * `ctx.auth.getUserIdentity()` (a Clerk token checked by Convex against
 * `auth.config.ts`); the role from the members table, or from Clerk
 * organization claims when `OR3_SYNC_MEMBERSHIP_FROM_CLAIMS` is set. Every
 * function checks it inside its own transaction.
 */
import type { UserIdentity } from 'convex/server';
import type { QueryCtx } from '../_generated/server.js';
import type { SyncConfig } from './config.js';
import { requestError } from './errors.js';

/** A member's role, from most to least powerful. */
export type Role = 'owner' | 'editor' | 'viewer';

const RANK: Record<Role, number> = { viewer: 0, editor: 1, owner: 2 };

/** The authenticated caller. */
export interface Caller {
  userId: string;
  identity: UserIdentity;
}

/** A caller who is a member of the workspace at hand. */
export interface Member extends Caller {
  role: Role;
}

/** The caller, or `unauthorized` when there is no valid token. */
export async function requireCaller(ctx: QueryCtx): Promise<Caller> {
  const identity = await ctx.auth.getUserIdentity();
  if (identity === null) throw requestError('unauthorized', 'sign in first: no valid token came with the request');
  return { userId: identity.subject, identity };
}

/**
 * The caller as a member with at least role `minimum`: `unauthorized` without
 * a token, `unknown_workspace` for an unknown workspace, `forbidden` for a non-member
 * or a role too low.
 */
export async function requireMember(
  ctx: QueryCtx,
  config: SyncConfig,
  workspaceId: string,
  minimum: Role,
): Promise<Member> {
  const caller = await requireCaller(ctx);
  const role = config.membershipFromClaims
    ? roleFromClaims(caller.identity, workspaceId)
    : await roleFromMembers(ctx, workspaceId, caller.userId);
  if (role === null) {
    if (!config.membershipFromClaims && !(await workspaceExists(ctx, workspaceId))) {
      throw requestError('unknown_workspace', `no workspace ${JSON.stringify(workspaceId)}`);
    }
    throw requestError('forbidden', 'not a member of this workspace');
  }
  if (RANK[role] < RANK[minimum]) {
    throw requestError('forbidden', `this needs the ${minimum} role; the caller is ${role}`);
  }
  return { ...caller, role };
}

async function roleFromMembers(ctx: QueryCtx, workspaceId: string, userId: string): Promise<Role | null> {
  const member = await ctx.db
    .query('workspace_members')
    .withIndex('by_workspace_user', (q) => q.eq('workspace_id', workspaceId).eq('user_id', userId))
    .unique();
  return member?.role ?? null;
}

/**
 * Clerk organization claims (add `org_id` and `org_role` to the `convex` JWT
 * template): the organization is the workspace; `admin` is owner, `member`
 * editor, any other role viewer.
 */
export function roleFromClaims(identity: UserIdentity, workspaceId: string): Role | null {
  if (identity['org_id'] !== workspaceId) return null;
  const orgRole = String(identity['org_role'] ?? '').replace(/^org:/, '');
  if (orgRole === 'admin') return 'owner';
  if (orgRole === 'member') return 'editor';
  return 'viewer';
}

/** Whether a workspace document exists. */
export async function workspaceExists(ctx: QueryCtx, workspaceId: string): Promise<boolean> {
  const workspace = await ctx.db
    .query('workspaces')
    .withIndex('by_workspace_id', (q) => q.eq('workspace_id', workspaceId))
    .unique();
  return workspace !== null;
}
