/**
 * Garbage collection on a cron (PROTOCOL.md section 5). `run` walks every
 * workspace in pages and schedules `collect` for each; `collect` does one
 * bounded step and schedules itself again while work is left.
 */
import { v } from 'convex/values';
import { internal } from './_generated/api.js';
import { internalMutation } from './_generated/server.js';
import { loadSyncConfig } from './lib/config.js';
import { collectGarbage, type GcReport } from './lib/retention.js';

const WORKSPACES_PER_RUN = 100;

/** One GC step over one workspace; reschedules itself while more is left. */
export const collect = internalMutation({
  args: { workspace_id: v.string() },
  handler: async (ctx, args): Promise<GcReport> => {
    const report = await collectGarbage(ctx, loadSyncConfig(), args.workspace_id, Date.now());
    if (report.more) await ctx.scheduler.runAfter(0, internal.gc.collect, { workspace_id: args.workspace_id });
    return report;
  },
});

/** Schedules `collect` for every workspace, a page at a time. */
export const run = internalMutation({
  args: { cursor: v.optional(v.union(v.string(), v.null())) },
  handler: async (ctx, args): Promise<{ scheduled: number }> => {
    const page = await ctx.db
      .query('workspace_counters')
      .withIndex('by_workspace')
      .paginate({ numItems: WORKSPACES_PER_RUN, cursor: args.cursor ?? null });
    for (const counter of page.page) {
      await ctx.scheduler.runAfter(0, internal.gc.collect, { workspace_id: counter.workspace_id });
    }
    if (!page.isDone) await ctx.scheduler.runAfter(0, internal.gc.run, { cursor: page.continueCursor });
    return { scheduled: page.page.length };
  },
});
