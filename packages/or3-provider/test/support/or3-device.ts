/**
 * A simulated OR3 Chat device: OR3's HLC (`<ms b36,9>:<counter b36,3>:<node>`),
 * ops and pulls in OR3's shapes, and last-writer-wins by `(clock, hlc, opId)`
 * in code-point order, as OR3's revision comparison orders them (re-declared
 * from that rule, not copied).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { PendingOp, PushResult, SnapshotRevision, SyncChange } from '../../src/or3-types.js';

export function compareRevision(a: SnapshotRevision, b: SnapshotRevision): number {
  if (a.clock !== b.clock) return a.clock > b.clock ? 1 : -1;
  if (a.hlc !== b.hlc) return a.hlc > b.hlc ? 1 : -1;
  if (a.opId !== b.opId) return a.opId > b.opId ? 1 : -1;
  return 0;
}

/** OR3's HLC text for `(ms, counter, node)`. */
export const or3Hlc = (ms: number, counter: number, node: string) =>
  `${ms.toString(36).padStart(9, '0')}:${counter.toString(36).padStart(3, '0')}:${node}`;

interface Row {
  payload: Record<string, unknown> | undefined;
  deleted: boolean;
  revision: SnapshotRevision;
}

export class Or3Device {
  readonly deviceId = randomBytes(4).toString('hex');
  readonly rows = new Map<string, Row>();
  cursor = 0;
  private ms = 0;
  private counter = 0;

  /** The next HLC of this device (OR3's send rule). */
  nextHlc(): string {
    const now = Date.now();
    if (now > this.ms) [this.ms, this.counter] = [now, 0];
    else this.counter += 1;
    return or3Hlc(this.ms, this.counter, this.deviceId);
  }

  /** A local write: the row stored here and the op to push. */
  write(tableName: string, pk: string, payload: Record<string, unknown> | null): PendingOp {
    const key = `${tableName}/${pk}`;
    const stamp = { deviceId: this.deviceId, opId: randomUUID(), hlc: this.nextHlc(), clock: (this.rows.get(key)?.revision.clock ?? 0) + 1 };
    const revision = { clock: stamp.clock, hlc: stamp.hlc, opId: stamp.opId };
    this.rows.set(key, { payload: payload ?? undefined, deleted: payload === null, revision });
    return {
      id: randomUUID(),
      tableName,
      operation: payload === null ? 'delete' : 'put',
      pk,
      ...(payload === null ? {} : { payload }),
      stamp,
      createdAt: Date.now(),
      attempts: 0,
      status: 'pending',
    };
  }

  /** Applies what a push answered: a winner that beat the local op replaces it. */
  settle(result: PushResult): void {
    for (const r of result.results) {
      if (!r.winner) continue;
      const entry = [...this.rows.entries()].find(([, row]) => row.revision.opId === r.opId);
      if (entry) this.apply(entry[0], r.winner.kind === 'put' ? r.winner.payload : undefined, r.winner.kind === 'delete', r.winner.revision);
    }
  }

  /** Merges pulled changes by LWW. */
  applyChanges(changes: SyncChange[]): void {
    for (const c of changes) {
      const revision = { clock: c.stamp.clock, hlc: c.stamp.hlc, opId: c.stamp.opId };
      this.apply(`${c.tableName}/${c.pk}`, c.payload as Record<string, unknown>, c.op === 'delete', revision);
    }
  }

  private apply(key: string, payload: Record<string, unknown> | undefined, deleted: boolean, revision: SnapshotRevision) {
    const current = this.rows.get(key);
    if (current && compareRevision(revision, current.revision) <= 0) return;
    this.rows.set(key, { payload, deleted, revision });
  }

  /** What the device shows: live rows' text by key, with their revisions. */
  view(): Record<string, { text: unknown; deleted: boolean; revision: SnapshotRevision }> {
    const out: Record<string, { text: unknown; deleted: boolean; revision: SnapshotRevision }> = {};
    for (const [key, row] of [...this.rows.entries()].sort()) out[key] = { text: row.deleted ? null : row.payload?.text, deleted: row.deleted, revision: row.revision };
    return out;
  }
}
