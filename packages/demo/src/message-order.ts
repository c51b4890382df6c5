/**
 * Display order of a thread's messages (PROTOCOL.md section 1): ascending
 * `(index, order_key, id)`. Two devices that sent at the same `index` are
 * ordered by `order_key` (the creating op's HLC), so every device shows the
 * same order whatever order the messages arrived in.
 */

/** The fields the order reads. */
export interface Ordered {
  id: string;
  index: number;
  order_key: string;
}

/** Compares strings by UTF-16 code units, which is bytewise for the ASCII of HLCs and ids. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Negative when `a` comes first. */
export function compareMessages(a: Ordered, b: Ordered): number {
  return a.index - b.index || compareStrings(a.order_key, b.order_key) || compareStrings(a.id, b.id);
}
