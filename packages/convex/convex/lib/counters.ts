/**
 * The per-workspace counter document: the last assigned server_version and
 * the oldest version the log still holds. A workspace that never had an op
 * (or whose membership comes from claims) has no document yet and reads as
 * empty.
 */
import type { Doc } from '../_generated/dataModel.js';
import type { MutationCtx, QueryCtx } from '../_generated/server.js';

/** The counter's values. */
export interface CounterState {
  server_version: number;
  oldest_retained_version: number;
  last_committed_at: number;
}

/** The counter of a workspace, with its document when it exists. */
export interface Counter extends CounterState {
  document: Doc<'workspace_counters'> | null;
}

const EMPTY: CounterState = { server_version: 0, oldest_retained_version: 1, last_committed_at: 0 };

/** Reads a workspace's counter. */
export async function readCounter(ctx: QueryCtx, workspaceId: string): Promise<Counter> {
  const document = await ctx.db
    .query('workspace_counters')
    .withIndex('by_workspace', (q) => q.eq('workspace_id', workspaceId))
    .unique();
  if (document === null) return { ...EMPTY, document: null };
  return {
    server_version: document.server_version,
    oldest_retained_version: document.oldest_retained_version,
    last_committed_at: document.last_committed_at,
    document,
  };
}

/** Writes new counter values, creating the document on first use. */
export async function writeCounter(
  ctx: MutationCtx,
  workspaceId: string,
  counter: Counter,
  next: Partial<CounterState>,
): Promise<void> {
  if (counter.document === null) {
    await ctx.db.insert('workspace_counters', {
      workspace_id: workspaceId,
      server_version: next.server_version ?? counter.server_version,
      oldest_retained_version: next.oldest_retained_version ?? counter.oldest_retained_version,
      last_committed_at: next.last_committed_at ?? counter.last_committed_at,
    });
  } else {
    await ctx.db.patch(counter.document._id, next);
  }
}
