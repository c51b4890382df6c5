/**
 * Last-writer-wins between two versions of a record (PROTOCOL.md section 2,
 * pinned by conformance/lww.json): the greater `(clock, hlc, op_id)` wins,
 * compared as (integer, UTF-8 bytes, UTF-8 bytes), as `sync_core::lww` does.
 * `deleted` is not part of the stamp.
 */
import { compareUtf8 } from './utf8.js';

/** The version stamp of one write of a record. */
export interface Stamp {
  clock: number;
  hlc: string;
  /** Unknown for a row whose op id was not kept (a client's local state); sorts lowest. */
  op_id: string | null;
}

/** Order of two stamps: 1 when `a` wins, -1 when `b` wins, 0 for the same write. */
export function compareStamps(a: Stamp, b: Stamp): -1 | 0 | 1 {
  if (a.clock !== b.clock) return a.clock > b.clock ? 1 : -1;
  const byHlc = compareUtf8(a.hlc, b.hlc);
  if (byHlc !== 0) return byHlc;
  return compareUtf8(a.op_id ?? '', b.op_id ?? '');
}
