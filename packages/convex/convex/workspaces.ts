/**
 * Workspaces and their members (PROTOCOL.md section 4, Workspaces and
 * members): create, list, and, for owners, set or remove a member's role. A
 * workspace always keeps at least one owner.
 */
import { v } from 'convex/values';
import type { MutationCtx } from './_generated/server.js';
import { mutation, query } from './_generated/server.js';
import { requireCaller, requireMember, type Role } from './lib/access.js';
import { loadSyncConfig } from './lib/config.js';
import { requestError } from './lib/errors.js';
import { roleValidator } from './schema.js';

/** A workspace as the caller sees it. */
export interface WorkspaceSummary {
  workspace_id: string;
  name: string;
  role: Role;
}

const MAX_NAME_LENGTH = 200;
const MAX_LISTED = 1000;

/** Creates a workspace; the caller becomes its owner. */
export const createWorkspace = mutation({
  args: { name: v.string() },
  handler: async (ctx, args): Promise<WorkspaceSummary> => {
    const caller = await requireCaller(ctx);
    const name = args.name.trim();
    if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
      throw requestError('invalid_input', `name must be 1 to ${MAX_NAME_LENGTH} chars`, { field: 'name' });
    }
    const workspaceId = crypto.randomUUID();
    const now = Date.now();
    await ctx.db.insert('workspaces', { workspace_id: workspaceId, name, created_by: caller.userId, created_at: now });
    await ctx.db.insert('workspace_members', {
      workspace_id: workspaceId,
      user_id: caller.userId,
      role: 'owner',
      added_at: now,
    });
    await ctx.db.insert('workspace_counters', {
      workspace_id: workspaceId,
      server_version: 0,
      oldest_retained_version: 1,
      last_committed_at: 0,
    });
    return { workspace_id: workspaceId, name, role: 'owner' };
  },
});

/** The caller's workspaces with their role in each. */
export const listWorkspaces = query({
  args: {},
  handler: async (ctx): Promise<{ workspaces: WorkspaceSummary[] }> => {
    const caller = await requireCaller(ctx);
    const memberships = await ctx.db
      .query('workspace_members')
      .withIndex('by_user', (q) => q.eq('user_id', caller.userId))
      .take(MAX_LISTED);
    const workspaces: WorkspaceSummary[] = [];
    for (const membership of memberships) {
      const workspace = await ctx.db
        .query('workspaces')
        .withIndex('by_workspace_id', (q) => q.eq('workspace_id', membership.workspace_id))
        .unique();
      if (workspace !== null) {
        workspaces.push({ workspace_id: workspace.workspace_id, name: workspace.name, role: membership.role });
      }
    }
    return { workspaces };
  },
});

/** The members of a workspace; any member may look. */
export const listMembers = query({
  args: { workspace_id: v.string() },
  handler: async (ctx, args): Promise<{ members: Array<{ user_id: string; role: Role }> }> => {
    await requireMember(ctx, loadSyncConfig(), args.workspace_id, 'viewer');
    const members = await ctx.db
      .query('workspace_members')
      .withIndex('by_workspace_user', (q) => q.eq('workspace_id', args.workspace_id))
      .take(MAX_LISTED);
    return { members: members.map((member) => ({ user_id: member.user_id, role: member.role })) };
  },
});

/** Adds a member or changes a member's role. Owners only. */
export const setMember = mutation({
  args: { workspace_id: v.string(), user_id: v.string(), role: roleValidator },
  handler: async (ctx, args): Promise<{ workspace_id: string; user_id: string; role: Role }> => {
    await requireMember(ctx, loadSyncConfig(), args.workspace_id, 'owner');
    if (args.user_id.length === 0) throw requestError('invalid_input', 'user_id must not be empty', { field: 'user_id' });
    const existing = await findMember(ctx, args.workspace_id, args.user_id);
    if (existing === null) {
      await ctx.db.insert('workspace_members', {
        workspace_id: args.workspace_id,
        user_id: args.user_id,
        role: args.role,
        added_at: Date.now(),
      });
    } else {
      if (existing.role === 'owner' && args.role !== 'owner') await requireAnotherOwner(ctx, args.workspace_id);
      await ctx.db.patch(existing._id, { role: args.role });
    }
    return { workspace_id: args.workspace_id, user_id: args.user_id, role: args.role };
  },
});

/** Removes a member. Owners only; the last owner cannot be removed. */
export const removeMember = mutation({
  args: { workspace_id: v.string(), user_id: v.string() },
  handler: async (ctx, args): Promise<null> => {
    await requireMember(ctx, loadSyncConfig(), args.workspace_id, 'owner');
    const existing = await findMember(ctx, args.workspace_id, args.user_id);
    if (existing === null) throw requestError('not_found', `${args.user_id} is not a member`, { field: 'user_id' });
    if (existing.role === 'owner') await requireAnotherOwner(ctx, args.workspace_id);
    await ctx.db.delete(existing._id);
    return null;
  },
});

async function findMember(ctx: MutationCtx, workspaceId: string, userId: string) {
  return ctx.db
    .query('workspace_members')
    .withIndex('by_workspace_user', (q) => q.eq('workspace_id', workspaceId).eq('user_id', userId))
    .unique();
}

async function requireAnotherOwner(ctx: MutationCtx, workspaceId: string): Promise<void> {
  const owners = await ctx.db
    .query('workspace_members')
    .withIndex('by_workspace_role', (q) => q.eq('workspace_id', workspaceId).eq('role', 'owner'))
    .take(2);
  if (owners.length < 2) throw requestError('last_owner', 'a workspace keeps at least one owner');
}
