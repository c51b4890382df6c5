/**
 * What a run reads before it pushes, in one IndexedDB transaction: the
 * cursor, the rescan, adoption and catch-up owed, whether the last rescan
 * left records for a rescan after the push, and, when nothing owed comes
 * before the push, the push's first batch, moved to `sent` in the same
 * transaction. Each of these was a transaction of its own, one after
 * another, between a captured write and its push (P11: three round trips
 * to the browser's database process of the ~5 ms a write waited).
 */
import { readAdoption, type AdoptionProgress } from './adopt.js';
import { owedTables } from './catch-up.js';
import type { EngineContext } from './context.js';
import type { RescanReason } from './events.js';
import { OUTBOX_SCOPE, outbox, type PendingOpRow } from './outbox/index.js';
import { readCursor, readOwedRescan } from './pull.js';
import { keptForRescanAfterPush } from './rescan.js';
import { STATE_TABLE } from './schema.js';

/** The engine's state as a run finds it. */
export interface RunStart {
  /** The stored cursor, null before the first snapshot. */
  cursor: number | null;
  owedRescan: RescanReason | null;
  adoption: AdoptionProgress | null;
  /** Tables owed a catch-up (`catch-up.ts`). */
  catchUp: string[];
  /** The last rescan kept records for a rescan after the push (`rescanDueAfterPush` has work). */
  keptForRescanAfterPush: boolean;
  /**
   * The push's first batch, already `sent`, when the run goes straight to its
   * push (no cursor missing, nothing owed, `mayTakeBatch`); else null and the
   * push takes its batches itself, after the rescan or catch-up.
   */
  batch: PendingOpRow[] | null;
}

/** Reads the run's start (and takes its first batch when nothing comes before the push) in one transaction. */
export function readRunStart(ctx: EngineContext, mayTakeBatch: boolean): Promise<RunStart> {
  return ctx.db.transaction('rw', [STATE_TABLE, ...OUTBOX_SCOPE], async () => {
    // Asked together, the batch with them: one round trip, not one per read.
    const [cursor, owedRescan, adoption, catchUp, kept, queued] = await Promise.all([
      readCursor(ctx),
      readOwedRescan(ctx),
      readAdoption(ctx),
      owedTables(ctx.db),
      keptForRescanAfterPush(ctx),
      mayTakeBatch ? outbox.queuedBatch(ctx.db, ctx.settings.pushBatchSize, ctx.runtime.userId) : null,
    ]);
    const straightToPush = queued !== null && cursor !== null && owedRescan === null && adoption === null && catchUp.length === 0;
    const batch = straightToPush ? await outbox.markSent(ctx.db, queued) : null;
    return { cursor, owedRescan, adoption, catchUp, keptForRescanAfterPush: kept, batch };
  });
}
