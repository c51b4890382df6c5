/**
 * Reading the change log after a cursor, for `pull` and `watchChanges`
 * (PROTOCOL.md section 4, Pull). A page is bounded by a number of changes, by
 * bytes of payload (at least one change always fits) and by how many entries
 * it may examine, so a project filter that skips much of the log still
 * answers within Convex's read limits; `cursor` then says how far it got.
 */
import type { Change, ChangesPage, RecordPayload } from '@or3/sync-protocol';
import type { Doc } from '../_generated/dataModel.js';
import type { QueryCtx } from '../_generated/server.js';
import { TransactionBudget, sizeOf } from './budget.js';
import { readCounter } from './counters.js';
import { requestError } from './errors.js';
import { changeInScope } from './scope.js';

/** Bounds of one page of changes. */
export interface PageBounds {
  /** Most changes in the answer. */
  limit: number;
  /** Most bytes of changes in the answer; the first change always goes in. */
  answerBytes: number;
  /** Most log entries examined. */
  examined: number;
}

/** Pull: the protocol's default and maximum limits, and about 4 MiB of payload. */
export const PULL_DEFAULT_LIMIT = 500;
export const PULL_MAX_LIMIT = 1000;
export const PULL_BOUNDS: Omit<PageBounds, 'limit'> = { answerBytes: 4 * 1024 * 1024, examined: 5000 };

/** `watchChanges`: small pages, since a reactive query re-runs on every commit. */
export const WATCH_BOUNDS: PageBounds = { limit: 200, answerBytes: 1024 * 1024, examined: 2000 };

/** A page of changes plus the newest version, as `watchChanges` answers. */
export interface WatchedChanges extends ChangesPage {
  server_version: number;
  oldest_retained_version: number;
}

/** Checks a client-supplied cursor and limit, throwing `invalid_input`. */
export function checkCursor(cursor: number): void {
  if (!Number.isSafeInteger(cursor) || cursor < 0) {
    throw requestError('invalid_input', 'cursor must be a non-negative integer', { field: 'cursor' });
  }
}

/** The limit to use for a pull, from what the client asked. */
export function pullLimit(requested: number | undefined): number {
  if (requested === undefined) return PULL_DEFAULT_LIMIT;
  if (!Number.isSafeInteger(requested) || requested < 1) {
    throw requestError('invalid_input', 'limit must be a positive integer', { field: 'limit' });
  }
  return Math.min(requested, PULL_MAX_LIMIT);
}

/**
 * Log entries with `server_version > cursor` in scope, ascending, within
 * `bounds`. Throws `cursor_expired` when the log no longer reaches back to
 * the cursor.
 */
export async function readChanges(
  ctx: QueryCtx,
  workspaceId: string,
  cursor: number,
  projectId: string | null,
  bounds: PageBounds,
): Promise<WatchedChanges> {
  checkCursor(cursor);
  const counter = await readCounter(ctx, workspaceId);
  if (cursor < counter.oldest_retained_version - 1) {
    throw requestError(
      'cursor_expired',
      `cursor ${cursor} is older than the retained log (oldest version ${counter.oldest_retained_version}); rescan`,
      { oldest_retained_version: counter.oldest_retained_version },
    );
  }
  const budget = new TransactionBudget();
  const changes: Change[] = [];
  let answerBytes = 0;
  let examined = 0;
  let reached = cursor;
  const entries = ctx.db
    .query('change_log')
    .withIndex('by_version', (q) => q.eq('workspace_id', workspaceId).gt('server_version', cursor));
  for await (const entry of entries) {
    if (examined > 0 && !budget.readFits(sizeOf(entry))) break;
    budget.read(entry);
    if (changeInScope(entry, projectId)) {
      const change = toChange(entry);
      const bytes = sizeOf(change);
      if (changes.length > 0 && answerBytes + bytes > bounds.answerBytes) break;
      changes.push(change);
      answerBytes += bytes;
    }
    examined += 1;
    reached = entry.server_version;
    if (changes.length >= bounds.limit || examined >= bounds.examined) break;
  }
  return {
    changes,
    cursor: reached,
    has_more: reached < counter.server_version,
    oldest_retained_version: counter.oldest_retained_version,
    server_version: counter.server_version,
  };
}

/** A log entry in its wire shape. */
function toChange(entry: Doc<'change_log'>): Change {
  return {
    server_version: entry.server_version,
    table_name: entry.table_name,
    pk: entry.pk,
    operation: entry.operation,
    payload: entry.payload as RecordPayload | null,
    clock: entry.clock,
    hlc: entry.hlc,
    op_id: entry.op_id,
    device_id: entry.device_id,
    scope_change: entry.scope_change,
    committed_at: entry.committed_at,
  };
}
