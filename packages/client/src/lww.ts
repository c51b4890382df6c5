/**
 * The client's last-writer-wins decisions over the one stamp order of
 * `@or3/sync-protocol` (`compareStamps`): local rows may lack an op id, which
 * the protocol's stamps never do.
 */
import { compareStamps, type Stamp } from '@or3/sync-protocol';

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
