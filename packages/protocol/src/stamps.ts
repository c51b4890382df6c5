/**
 * Last-writer-wins between two versions of a record (PROTOCOL.md section 2):
 * the greater `(clock, hlc, op_id)` wins, compared as (integer, bytes, bytes).
 * `deleted` is not part of the stamp.
 */

/** The part of a version that orders it. */
export interface Stamp {
  clock: number;
  hlc: string;
  op_id: string;
}

/**
 * Compares two strings by their UTF-8 bytes. Code point order is UTF-8 byte
 * order, which plain `<` on UTF-16 units is not above U+FFFF.
 */
export function compareUtf8(a: string, b: string): -1 | 0 | 1 {
  if (a === b) return 0;
  const left = a[Symbol.iterator]();
  const right = b[Symbol.iterator]();
  for (;;) {
    const x = left.next();
    const y = right.next();
    if (x.done === true) return y.done === true ? 0 : -1;
    if (y.done === true) return 1;
    const cx = x.value.codePointAt(0) ?? 0;
    const cy = y.value.codePointAt(0) ?? 0;
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}

/** Sign of `a` versus `b` under LWW: 1 when `a` wins, -1 when `b` wins, 0 for the same write. */
export function compareStamps(a: Stamp, b: Stamp): -1 | 0 | 1 {
  if (a.clock !== b.clock) return a.clock > b.clock ? 1 : -1;
  const byHlc = compareUtf8(a.hlc, b.hlc);
  if (byHlc !== 0) return byHlc;
  return compareUtf8(a.op_id, b.op_id);
}
