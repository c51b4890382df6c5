/**
 * Last-writer-wins (PROTOCOL.md section 2): the greater `(clock, hlc, op_id)`
 * wins, compared as (integer, bytes, bytes). `deleted` is not part of the stamp.
 */

/** The version stamp of one write of a record. */
export interface Stamp {
  clock: number;
  hlc: string;
  /** Unknown for a row whose op id was not kept; sorts lowest. */
  op_id: string | null;
}

/** Order of two stamps: 1 when `a` wins, -1 when `b` wins, 0 for the same write. */
export function compareStamps(a: Stamp, b: Stamp): -1 | 0 | 1 {
  if (a.clock !== b.clock) return a.clock > b.clock ? 1 : -1;
  if (a.hlc !== b.hlc) return a.hlc > b.hlc ? 1 : -1;
  const ao = a.op_id ?? '';
  const bo = b.op_id ?? '';
  if (ao !== bo) return ao > bo ? 1 : -1;
  return 0;
}

/**
 * True when `incoming` must replace `current`. Equal clock and hlc is treated
 * as the same write when either op id is unknown: a device never issues two
 * writes with one hlc.
 */
export function winsOver(incoming: Stamp, current: Stamp | null): boolean {
  if (!current) return true;
  if (incoming.clock === current.clock && incoming.hlc === current.hlc) {
    if (incoming.op_id === null || current.op_id === null) return false;
  }
  return compareStamps(incoming, current) > 0;
}

/** The greater of two optional stamps. */
export function maxStamp(a: Stamp | null, b: Stamp | null): Stamp | null {
  if (!a) return b;
  if (!b) return a;
  return compareStamps(a, b) >= 0 ? a : b;
}
