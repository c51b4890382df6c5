/**
 * The Convex tables of or3-sync. Every query the functions run is an index
 * range over one of the indexes below, never a table scan. Everything is keyed
 * by `workspace_id` first, so nothing of one workspace can collide with or
 * reveal another.
 *
 * An app that has its own schema spreads `or3SyncTables` into it.
 */
import { defineSchema, defineTable } from 'convex/server';
import { v } from 'convex/values';

/** `owner` manages members; `editor` pushes and pulls; `viewer` only pulls. */
export const roleValidator = v.union(v.literal('owner'), v.literal('editor'), v.literal('viewer'));

/** The or3-sync tables, to spread into an app's own `defineSchema`. */
export const or3SyncTables = {
  /** A unit of tenancy and of ordering. */
  workspaces: defineTable({
    workspace_id: v.string(),
    name: v.string(),
    created_by: v.string(),
    created_at: v.number(),
  }).index('by_workspace_id', ['workspace_id']),

  /** Who may use a workspace, and how. */
  workspace_members: defineTable({
    workspace_id: v.string(),
    user_id: v.string(),
    role: roleValidator,
    added_at: v.number(),
  })
    .index('by_workspace_user', ['workspace_id', 'user_id'])
    .index('by_workspace_role', ['workspace_id', 'role'])
    .index('by_user', ['user_id']),

  /**
   * One per workspace: the last assigned server_version. Every applying push
   * reads and writes it, so Convex's serializable transactions make versions
   * gap-free and in commit order.
   */
  workspace_counters: defineTable({
    workspace_id: v.string(),
    server_version: v.number(),
    /** Pulls from a cursor below `oldest_retained_version - 1` get `cursor_expired`. */
    oldest_retained_version: v.number(),
    /** Commit time of the latest applied op; commit times never go backwards. */
    last_committed_at: v.number(),
  }).index('by_workspace', ['workspace_id']),

  /** Current state of every record: the winning version, tombstones included, forever. */
  records: defineTable({
    workspace_id: v.string(),
    table_name: v.string(),
    pk: v.string(),
    /** The row in the client's snake_case shape; null for a delete without a row or a purged tombstone. */
    payload: v.any(),
    deleted: v.boolean(),
    clock: v.number(),
    hlc: v.string(),
    op_id: v.string(),
    device_id: v.string(),
    server_version: v.number(),
    /** Server time of the commit, epoch ms; retention reads only this. */
    committed_at: v.number(),
    /** The project the record was committed under: a thread's own, a message's thread's (null for none). */
    project_id: v.union(v.string(), v.null()),
    /** Messages: the thread the message is in. */
    thread_id: v.union(v.string(), v.null()),
    /** A tombstone whose payload GC removed; its stamp stays. */
    payload_purged: v.boolean(),
  })
    .index('by_key', ['workspace_id', 'table_name', 'pk'])
    .index('by_thread', ['workspace_id', 'thread_id'])
    .index('by_tombstone_age', ['workspace_id', 'deleted', 'payload_purged', 'committed_at']),

  /** The change log: only winning ops, in server_version order. */
  change_log: defineTable({
    workspace_id: v.string(),
    server_version: v.number(),
    table_name: v.string(),
    pk: v.string(),
    operation: v.union(v.literal('put'), v.literal('delete')),
    payload: v.any(),
    clock: v.number(),
    hlc: v.string(),
    op_id: v.string(),
    device_id: v.string(),
    /** True for threads and messages, which belong to projects. */
    scoped: v.boolean(),
    /** Projects the change belongs to, resolved at commit time (two for a thread that moved). */
    project_ids: v.array(v.string()),
    /** A thread that moved between projects; project-scoped clients rescan. */
    scope_change: v.boolean(),
    committed_at: v.number(),
  })
    .index('by_version', ['workspace_id', 'server_version'])
    .index('by_commit_time', ['workspace_id', 'committed_at']),

  /** Op ids already applied, for idempotent retries; purged with the log. */
  applied_ops: defineTable({
    workspace_id: v.string(),
    op_id: v.string(),
    server_version: v.number(),
  })
    .index('by_op', ['workspace_id', 'op_id'])
    .index('by_version', ['workspace_id', 'server_version']),

  /** The last cursor each device reported as durably applied, per scope it syncs, for GC. */
  device_cursors: defineTable({
    workspace_id: v.string(),
    device_id: v.string(),
    /** The project scope of the cursor; null for the whole workspace. */
    project_id: v.union(v.string(), v.null()),
    user_id: v.string(),
    cursor: v.number(),
    seen_at: v.number(),
  })
    .index('by_device', ['workspace_id', 'device_id', 'project_id'])
    .index('by_cursor', ['workspace_id', 'cursor'])
    .index('by_seen', ['workspace_id', 'seen_at']),
};

export default defineSchema(or3SyncTables);
