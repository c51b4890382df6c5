/**
 * What a run reads before it pushes, in one IndexedDB transaction: the
 * owner, the cursor, the rescan, adoption and catch-up owed, whether the last rescan
 * left records for a rescan after the push, and, when nothing owed comes
 * before the push, the push's first batch, moved to `sent` in the same
 * transaction. Each of these was a transaction of its own, one after
 * another, between a captured write and its push (P11: three round trips
 * to the browser's database process of the ~5 ms a write waited).
 *
 * The run gets its start as soon as the batch's `sent` mark is written, not
 * once it commits: the request leaves while IndexedDB commits the mark, and
 * the push settles nothing of the batch before `TakenBatch.committed`
 * (`push.ts`), so a mark that never commits leaves the ops queued as they were.
 */
import { adoptionFromRow, type AdoptionProgress } from './adopt.js';
import { owedTablesFromRow } from './catch-up.js';
import type { EngineContext } from './context.js';
import type { RescanReason } from './events.js';
import { OUTBOX_SCOPE, outbox } from './outbox/index.js';
import { cursorFromRow, owedRescanFromRow } from './pull.js';
import type { TakenBatch } from './push.js';
import { keptFromRow } from './rescan.js';
import { OWNERSHIP_KEYS } from './people/ownership.js';
import { STATE_KEYS, STATE_TABLE, type SyncStateRow } from './schema.js';

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
  /** The user whose data the database holds (another than the engine's: someone opened it since). */
  owner: string | null;
  /**
   * The push's first batch, marked `sent`, when the run goes straight to its
   * push (no cursor missing, nothing owed, `mayTakeBatch`); else null and the
   * push takes its batches itself, after the rescan or catch-up.
   */
  batch: TakenBatch | null;
}

/**
 * Reads the run's start (and takes its first batch when nothing comes before the push) in one
 * transaction. With a batch, it resolves once the batch's `sent` mark is written, before the
 * transaction commits (the batch's `committed` says when, or why not); otherwise once it commits.
 */
export function readRunStart(ctx: EngineContext, mayTakeBatch: boolean): Promise<RunStart> {
  return new Promise<RunStart>((resolve, reject) => {
    let commit!: { resolve: () => void; reject: (error: unknown) => void };
    const committed = new Promise<void>((resolve, reject) => (commit = { resolve, reject }));
    committed.catch(() => {}); // the push awaits it; a run that never gets there must not report it unhandled
    const transaction = ctx.db.transaction('rw', [STATE_TABLE, ...OUTBOX_SCOPE], async (): Promise<RunStart> => {
      // Asked together, the batch with them: one round trip, the state rows in one request.
      const stateKeys = [
        ctx.cursorKey,
        STATE_KEYS.rescanOwed(ctx.cursorKey),
        STATE_KEYS.adoption,
        STATE_KEYS.catchUp,
        STATE_KEYS.rescanAfterPush(ctx.cursorKey),
        OWNERSHIP_KEYS.owner,
      ];
      const [rows, queued] = await Promise.all([
        ctx.db.table(STATE_TABLE).bulkGet(stateKeys) as Promise<(SyncStateRow | undefined)[]>,
        mayTakeBatch ? outbox.queuedBatch(ctx.db, ctx.settings.pushBatchSize, ctx.runtime.userId) : null,
      ]);
      const [cursorRow, owedRow, adoptionRow, catchUpRow, keptRow, ownerRow] = rows;
      const cursor = cursorFromRow(cursorRow);
      const owedRescan = owedRescanFromRow(owedRow);
      const adoption = adoptionFromRow(adoptionRow);
      const catchUp = owedTablesFromRow(catchUpRow);
      const owner = typeof ownerRow?.value === 'string' ? ownerRow.value : null;
      const start: RunStart = { cursor, owedRescan, adoption, catchUp, keptForRescanAfterPush: keptFromRow(keptRow), owner, batch: null };
      // Nothing is taken for a run that stops here: another user owns the database now.
      const ownerStands = owner === null || ctx.runtime.userId === null || owner === ctx.runtime.userId;
      const straightToPush = queued !== null && ownerStands && cursor !== null && owedRescan === null && adoption === null && catchUp.length === 0;
      if (!straightToPush) return start;
      const marking = outbox.markSent(ctx.db, queued);
      start.batch = { ops: queued, committed };
      // The mark is written and no other transaction touches the outbox until this one ends: the
      // request may go now, while IndexedDB commits (P11: the commit was ~1 ms of each write's wait).
      // Handed over from a task of its own: code continuing from inside this transaction's zone
      // (Dexie follows native awaits into it) would run its own Dexie calls in this transaction.
      setTimeout(() => resolve(start), 0);
      await marking;
      return start;
    });
    transaction.then(() => commit.resolve(), commit.reject);
    transaction.then(resolve, reject);
  });
}
