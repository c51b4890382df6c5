/**
 * Retention and garbage collection (PROTOCOL.md section 5), one bounded step
 * per call:
 * - device positions not seen for `device_ttl` stop holding back GC (deleted);
 * - the watermark is the lowest position of the remaining devices;
 * - log entries (and their op-id records) up to
 *   `min(watermark, newest version committed more than min_retention ago)`
 *   are deleted, and `oldest_retained_version` rises past them;
 * - tombstones older than `tombstone_retention` and below the watermark lose
 *   their payload, never their stamp, so a stale put still loses LWW.
 */
import type { Id } from '../_generated/dataModel.js';
import type { MutationCtx } from '../_generated/server.js';
import { TransactionBudget, sizeOf } from './budget.js';
import type { SyncConfig } from './config.js';
import { readCounter, writeCounter } from './counters.js';

/** Most documents one GC step deletes or rewrites, per kind. */
export const GC_BATCH = 500;

/** What one GC step did, and whether more is left. */
export interface GcReport {
  devicesExpired: number;
  entriesPurged: number;
  opIdsPurged: number;
  tombstonesPurged: number;
  oldestRetainedVersion: number;
  /** A batch or the read budget filled up: run again. */
  more: boolean;
}

/** One GC step over one workspace, at server time `now`. */
export async function collectGarbage(
  ctx: MutationCtx,
  config: SyncConfig,
  workspaceId: string,
  now: number,
): Promise<GcReport> {
  const budget = new TransactionBudget();
  const counter = await readCounter(ctx, workspaceId);
  const report: GcReport = {
    devicesExpired: 0,
    entriesPurged: 0,
    opIdsPurged: 0,
    tombstonesPurged: 0,
    oldestRetainedVersion: counter.oldest_retained_version,
    more: false,
  };

  const staleDevices = await ctx.db
    .query('device_cursors')
    .withIndex('by_seen', (q) => q.eq('workspace_id', workspaceId).lt('seen_at', now - config.deviceTtlMs))
    .take(GC_BATCH);
  for (const device of staleDevices) await ctx.db.delete(device._id);
  report.devicesExpired = staleDevices.length;
  // While stale devices remain, the minimum position is not yet the watermark.
  if (staleDevices.length === GC_BATCH) return { ...report, more: true };

  const lowestDevice = await ctx.db
    .query('device_cursors')
    .withIndex('by_cursor', (q) => q.eq('workspace_id', workspaceId))
    .first();
  const watermark = lowestDevice?.cursor ?? Number.POSITIVE_INFINITY;
  const oldEnough = await ctx.db
    .query('change_log')
    .withIndex('by_commit_time', (q) => q.eq('workspace_id', workspaceId).lte('committed_at', now - config.minRetentionMs))
    .order('desc')
    .first();
  const horizon = Math.min(watermark, oldEnough?.server_version ?? 0);

  // Collect first, write after: a query is not changed under its own iteration.
  const purgeable: Array<{ _id: Id<'change_log'>; server_version: number }> = [];
  const entries = ctx.db
    .query('change_log')
    .withIndex('by_version', (q) => q.eq('workspace_id', workspaceId).lte('server_version', horizon));
  for await (const entry of entries) {
    if (purgeable.length === GC_BATCH || !budget.readFits(sizeOf(entry))) {
      report.more = true;
      break;
    }
    budget.read(entry);
    purgeable.push(entry);
  }
  for (const entry of purgeable) await ctx.db.delete(entry._id);
  report.entriesPurged = purgeable.length;
  const lastPurged = purgeable.at(-1)?.server_version ?? null;
  if (lastPurged !== null && lastPurged + 1 > counter.oldest_retained_version) {
    report.oldestRetainedVersion = lastPurged + 1;
    await writeCounter(ctx, workspaceId, counter, { oldest_retained_version: report.oldestRetainedVersion });
  }

  const opIds = await ctx.db
    .query('applied_ops')
    .withIndex('by_version', (q) => q.eq('workspace_id', workspaceId).lte('server_version', horizon))
    .take(GC_BATCH);
  for (const opId of opIds) await ctx.db.delete(opId._id);
  report.opIdsPurged = opIds.length;
  report.more ||= opIds.length === GC_BATCH;

  const tombstones = ctx.db
    .query('records')
    .withIndex('by_tombstone_age', (q) =>
      q
        .eq('workspace_id', workspaceId)
        .eq('deleted', true)
        .eq('payload_purged', false)
        .lte('committed_at', now - config.tombstoneRetentionMs),
    );
  const expired: Array<Id<'records'>> = [];
  for await (const tombstone of tombstones) {
    if (expired.length === GC_BATCH || !budget.readFits(sizeOf(tombstone))) {
      report.more = true;
      break;
    }
    budget.read(tombstone);
    // Newer than what some active device has applied: it may still need the row.
    if (tombstone.server_version <= watermark) expired.push(tombstone._id);
  }
  for (const id of expired) await ctx.db.patch(id, { payload: null, payload_purged: true });
  report.tombstonesPurged = expired.length;
  return report;
}
