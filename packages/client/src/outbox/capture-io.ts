/**
 * The outbox below Dexie's middleware, where capture writes a mutation's ops
 * in the app's own IndexedDB transaction: appending, rewriting what foresight
 * got wrong, taking back the ops of rows that failed, and appending one by one
 * with the coalescing rule (above the soft limit).
 */
import type { DBCore, DBCoreMutateResponse, DBCoreTransaction } from 'dexie';
import { CaptureError } from '../capture/runtime.js';
import { opState, takesLaterWrite } from './op-state.js';
import { latestOp, OUTBOX_TABLE, type PendingOpRow } from './table.js';

/** The outbox of one capturing transaction. */
export interface CaptureOutbox {
  /** Appends `ops`; the answer's `results` are their seqs. */
  append(ops: PendingOpRow[]): Promise<DBCoreMutateResponse>;
  /** Rewrites ops at the seqs they carry. */
  rewrite(ops: PendingOpRow[]): Promise<DBCoreMutateResponse>;
  /** Takes back the ops at `seqs` (their rows failed). */
  takeBack(seqs: unknown[]): Promise<DBCoreMutateResponse>;
  /** Appends `ops` one by one, each coalescing into its record's latest op when that op takes it; returns how many were added. */
  appendCoalescing(ops: PendingOpRow[]): Promise<number>;
}

export function captureOutbox(down: DBCore, trans: DBCoreTransaction): CaptureOutbox {
  const outbox = down.table(OUTBOX_TABLE);
  return {
    append: (ops) => outbox.mutate({ trans, type: 'add', values: ops }),
    rewrite: (ops) => outbox.mutate({ trans, type: 'put', values: ops }),
    takeBack: (seqs) => outbox.mutate({ trans, type: 'delete', keys: seqs }),
    async appendCoalescing(ops) {
      if (ops.length === 0) return 0;
      const byRecord = outbox.schema.getIndexByKeyPath(['table_name', 'pk']);
      if (!byRecord) throw new CaptureError(`${OUTBOX_TABLE} lacks its [table_name+pk] index`);
      let added = 0;
      for (const op of ops) {
        const key = [op.table_name, op.pk];
        const { result } = await outbox.query({
          trans,
          values: true,
          query: { index: byRecord, range: { type: 1 /* DBCoreRangeType.Equal */, lower: key, upper: key } },
        });
        const latest = latestOp(result as PendingOpRow[]);
        if (latest && takesLaterWrite(opState(latest))) {
          await outbox.mutate({ trans, type: 'put', values: [{ ...op, seq: latest.seq }] });
        } else {
          await outbox.mutate({ trans, type: 'add', values: [op] });
          added += 1;
        }
      }
      return added;
    },
  };
}
