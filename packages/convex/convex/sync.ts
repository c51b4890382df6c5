/**
 * The sync functions a client calls in direct mode (PROTOCOL.md sections 4
 * and 5, in Convex form): `push`, `pull`, `watchChanges`, `ackCursor`,
 * `snapshot` and `getRecord`. Each checks the caller's membership and role in
 * its own transaction, and answers in the wire shapes of the gateway.
 */
import { isDeviceId, type ChangesPage, type PushResponse, type SnapshotItem, type SnapshotPage } from '@or3/sync-protocol';
import { v } from 'convex/values';
import { mutation, query } from './_generated/server.js';
import { requireMember } from './lib/access.js';
import { PULL_BOUNDS, WATCH_BOUNDS, checkCursor, pullLimit, readChanges, type WatchedChanges } from './lib/changes.js';
import { loadSyncConfig } from './lib/config.js';
import { readCounter } from './lib/counters.js';
import { requestError } from './lib/errors.js';
import { pushOps } from './lib/push.js';
import { readSnapshotPage, toSnapshotItem } from './lib/snapshot.js';

const projectScope = v.optional(v.union(v.string(), v.null()));

/**
 * Applies a batch of ops (at most 500) in one transaction; one result per op,
 * in request order. Ops are validated one by one, so a malformed op is a
 * `rejected` result, never a failed batch. A batch that would cross a Convex
 * transaction limit fails whole with `batch_too_large`: split it and retry.
 * Owners and editors only.
 */
export const push = mutation({
  args: { workspace_id: v.string(), ops: v.array(v.any()) },
  handler: async (ctx, args): Promise<PushResponse> => {
    const config = loadSyncConfig();
    await requireMember(ctx, config, args.workspace_id, 'editor');
    return pushOps(ctx, config, args.workspace_id, args.ops);
  },
});

/**
 * Changes after `cursor`, ascending, at most `limit` (default 500, max 1000)
 * and about 4 MiB. Queries cannot write: report the applied cursor with
 * `ackCursor`.
 */
export const pull = query({
  args: { workspace_id: v.string(), cursor: v.number(), limit: v.optional(v.number()), project_id: projectScope },
  handler: async (ctx, args): Promise<ChangesPage> => {
    const config = loadSyncConfig();
    await requireMember(ctx, config, args.workspace_id, 'viewer');
    const page = await readChanges(ctx, args.workspace_id, args.cursor, args.project_id ?? null, {
      ...PULL_BOUNDS,
      limit: pullLimit(args.limit),
    });
    return {
      changes: page.changes,
      cursor: page.cursor,
      has_more: page.has_more,
      oldest_retained_version: page.oldest_retained_version,
    };
  },
});

/**
 * The reactive feed: the newest server_version and the changes after the
 * client's cursor, bounded. A client subscribes to it (`onUpdate`), applies
 * what it gets, acknowledges, and subscribes again from the new cursor.
 */
export const watchChanges = query({
  args: { workspace_id: v.string(), cursor: v.number(), project_id: projectScope },
  handler: async (ctx, args): Promise<WatchedChanges> => {
    const config = loadSyncConfig();
    await requireMember(ctx, config, args.workspace_id, 'viewer');
    return readChanges(ctx, args.workspace_id, args.cursor, args.project_id ?? null, WATCH_BOUNDS);
  },
});

/**
 * Records the cursor a device has durably applied in a scope, with the server
 * time, as its position for GC (PROTOCOL.md section 5). Any member.
 */
export const ackCursor = mutation({
  args: { workspace_id: v.string(), device_id: v.string(), cursor: v.number(), project_id: projectScope },
  handler: async (ctx, args): Promise<null> => {
    const config = loadSyncConfig();
    const member = await requireMember(ctx, config, args.workspace_id, 'viewer');
    if (!isDeviceId(args.device_id)) {
      throw requestError('invalid_input', 'device_id must be 16 to 64 lowercase hex chars', { field: 'device_id' });
    }
    checkCursor(args.cursor);
    const counter = await readCounter(ctx, args.workspace_id);
    if (args.cursor > counter.server_version) {
      throw requestError('invalid_input', `cursor ${args.cursor} is beyond the newest version ${counter.server_version}`, {
        field: 'cursor',
      });
    }
    const projectId = args.project_id ?? null;
    const position = { cursor: args.cursor, seen_at: Date.now(), user_id: member.userId };
    const existing = await ctx.db
      .query('device_cursors')
      .withIndex('by_device', (q) =>
        q.eq('workspace_id', args.workspace_id).eq('device_id', args.device_id).eq('project_id', projectId),
      )
      .unique();
    if (existing === null) {
      await ctx.db.insert('device_cursors', {
        workspace_id: args.workspace_id,
        device_id: args.device_id,
        project_id: projectId,
        ...position,
      });
    } else {
      await ctx.db.patch(existing._id, position);
    }
    return null;
  },
});

/**
 * One page of the current state of every record in scope, tombstones
 * included, ordered by `(table_name, pk)`. Start with `page_token` null; the
 * client then acknowledges `snapshot_version` so GC keeps the log from there.
 */
export const snapshot = query({
  args: {
    workspace_id: v.string(),
    page_token: v.optional(v.union(v.string(), v.null())),
    limit: v.optional(v.number()),
    project_id: projectScope,
  },
  handler: async (ctx, args): Promise<SnapshotPage> => {
    const config = loadSyncConfig();
    await requireMember(ctx, config, args.workspace_id, 'viewer');
    return readSnapshotPage(ctx, args.workspace_id, args.project_id ?? null, args.page_token ?? null, args.limit);
  },
});

/** The server's current version of one record, or null. */
export const getRecord = query({
  args: { workspace_id: v.string(), table_name: v.string(), pk: v.string() },
  handler: async (ctx, args): Promise<SnapshotItem | null> => {
    const config = loadSyncConfig();
    await requireMember(ctx, config, args.workspace_id, 'viewer');
    const record = await ctx.db
      .query('records')
      .withIndex('by_key', (q) =>
        q.eq('workspace_id', args.workspace_id).eq('table_name', args.table_name).eq('pk', args.pk),
      )
      .unique();
    return record === null ? null : toSnapshotItem(record);
  },
});
