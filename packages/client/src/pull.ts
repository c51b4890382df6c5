/**
 * The pull side: reads the change log after the stored cursor and applies it
 * with the cursor in the same transaction (PROTOCOL.md section 6).
 */
import { applyRemoteVersions, applyRemoteVersionsAhead, mayApplyAhead, runRemoteTransaction, versionFromChange, type RemoteVersion } from './apply.js';
import type { EngineContext } from './context.js';
import type { ConflictEvent, RescanReason } from './events.js';
import type { ChangesBatch } from './provider.js';
import {
  STATE_KEYS,
  STATE_TABLE,
  type SyncStateRow,
} from './schema.js';

/** What a pull did. */
export interface PullOutcome {
  /** Changes received. */
  pulled: number;
  applied: number;
  conflicts: ConflictEvent[];
  cursor: number;
  /** A change moved a thread between projects: a project-scoped client must rescan. */
  scopeChanged: boolean;
}

/** The stored cursor of the engine's scope, or null before the first snapshot. */
export async function readCursor(ctx: EngineContext): Promise<number | null> {
  return cursorFromRow(await ctx.db.table(STATE_TABLE).get(ctx.cursorKey));
}

/** The cursor a `_or3sync_state` row (at `ctx.cursorKey`) holds. */
export function cursorFromRow(row: SyncStateRow | undefined): number | null {
  return typeof row?.value === 'number' ? row.value : null;
}

/**
 * The rescan the scope owes, if any: a pulled scope change records one in the
 * transaction that moves the cursor past it, so neither a failed rescan nor a
 * reload can lose it.
 */
export async function readOwedRescan(ctx: EngineContext): Promise<RescanReason | null> {
  return owedRescanFromRow(await ctx.db.table(STATE_TABLE).get(STATE_KEYS.rescanOwed(ctx.cursorKey)));
}

/** The owed rescan a `_or3sync_state` row (at `STATE_KEYS.rescanOwed`) holds. */
export function owedRescanFromRow(row: SyncStateRow | undefined): RescanReason | null {
  return typeof row?.value === 'string' ? (row.value as RescanReason) : null;
}

/** Pulls pages until `has_more` is false. Throws `cursor_expired` for the engine to rescan. */
export async function pullChanges(ctx: EngineContext, from: number): Promise<PullOutcome> {
  const outcome: PullOutcome = { pulled: 0, applied: 0, conflicts: [], cursor: from, scopeChanged: false };
  for (;;) {
    const before = outcome.cursor;
    const page = await ctx.provider.pull(ctx.scope, before, ctx.settings.pullLimit);
    if (typeof page.server_time === 'number') ctx.observeServerTime(page.server_time);
    const applied = await applyBatch(ctx, { changes: page.changes, from: before, to: page.cursor });
    outcome.pulled += page.changes.length;
    outcome.applied += applied.applied;
    outcome.conflicts.push(...applied.conflicts);
    outcome.cursor = Math.max(outcome.cursor, page.cursor);
    outcome.scopeChanged ||= applied.scopeChanged;
    if (!page.has_more || page.cursor <= before) break;
  }
  return outcome;
}

/**
 * Applies one batch of changes covering (from, to] and stores `to` as the
 * cursor, in one transaction. Changes at or below the stored cursor are
 * skipped, so overlapping batches (a poll racing a pull) are harmless.
 * A batch that starts past the stored cursor is a gap (`gap: true`, nothing
 * applied): the caller must pull.
 */
export async function applyBatch(ctx: EngineContext, batch: ChangesBatch): Promise<BatchOutcome> {
  // A realtime frame (a few changes, no scope change to record) goes ahead of its reads' answers.
  const mayScopeChange = ctx.scope.projectId != null && batch.changes.some((c) => c.scope_change === true);
  const versions = batch.changes.map(versionFromChange);
  if (batch.to > batch.from && !mayScopeChange && mayApplyAhead(ctx.runtime, versions)) {
    const ahead = await applyBatchAhead(ctx, batch, versions);
    if (ahead) return ahead;
  }
  return applyBatchInOrder(ctx, batch);
}

/** What `applyBatch` did. */
export interface BatchOutcome {
  applied: number;
  conflicts: ConflictEvent[];
  scopeChanged: boolean;
  gap: boolean;
}

/** Thrown in `applyBatchAhead`'s transaction when the stored cursor is not the batch's `from`: rolls it back. */
class CursorNotForeseen extends Error {}

/**
 * `applyBatch` in one round of requests when the batch follows the stored cursor (as every
 * realtime frame does): the cursor is read, the changes applied ahead (`applyRemoteVersionsAhead`),
 * the new cursor written, all before any answer. A batch that does not start at the stored cursor
 * (a gap, or an overlap with a pull) rolls the whole transaction back and resolves null: the
 * caller applies it the usual way, which reads first.
 */
async function applyBatchAhead(ctx: EngineContext, batch: ChangesBatch, versions: RemoteVersion[]): Promise<BatchOutcome | null> {
  try {
    return await runRemoteTransaction(ctx.db, ctx.runtime, [], async () => {
      const { outcome, cursorBefore } = await applyRemoteVersionsAhead(ctx.db, ctx.runtime, versions, { key: ctx.cursorKey, to: batch.to });
      if (cursorBefore !== batch.from) throw new CursorNotForeseen();
      return { ...outcome, scopeChanged: false, gap: false };
    });
  } catch (error) {
    if (error instanceof CursorNotForeseen) return null;
    throw error;
  }
}

/** `applyBatch` with the reads answered before the writes go out: any batch. */
async function applyBatchInOrder(ctx: EngineContext, batch: ChangesBatch): Promise<BatchOutcome> {
  const state = ctx.db.table(STATE_TABLE);
  return runRemoteTransaction(ctx.db, ctx.runtime, [], async () => {
    // The cursor is read with the records' local state, not before it (one round trip fewer per
    // realtime frame); a gap applies nothing (every version is at or below an infinite floor).
    const stored = state.get(ctx.cursorKey).then((row) => (typeof row?.value === 'number' ? (row.value as number) : 0));
    const floor = stored.then((cursor) => (batch.from > cursor ? Infinity : cursor));
    // The cursor (and a scope change's owed rescan) is written as soon as it is read, with the
    // records' reads, not after their writes: one round trip fewer per realtime frame (P11).
    const moved = stored.then(async (cursor) => {
      if (batch.from > cursor) return { gap: true, scopeChanged: false };
      const scopeChanged = ctx.scope.projectId != null && batch.changes.some((c) => c.server_version > cursor && c.scope_change === true);
      await Promise.all([
        batch.to > cursor ? state.put({ key: ctx.cursorKey, value: batch.to }) : null,
        scopeChanged ? state.put({ key: STATE_KEYS.rescanOwed(ctx.cursorKey), value: 'scope_change' satisfies RescanReason }) : null,
      ]);
      return { gap: false, scopeChanged };
    });
    const [outcome, { gap, scopeChanged }] = await Promise.all([applyRemoteVersions(ctx.db, ctx.runtime, batch.changes.map(versionFromChange), floor), moved]);
    if (gap) return { applied: 0, conflicts: [], scopeChanged: false, gap: true };
    return { ...outcome, scopeChanged, gap: false };
  });
}
