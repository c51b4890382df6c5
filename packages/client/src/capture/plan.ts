/**
 * Write planning: the rows, outbox ops and tombstones a captured mutation
 * writes, stamped from what is stored and the clock state (PROTOCOL.md
 * sections 2 and 6). Pure functions, no I/O: the foresight path plans twice,
 * once from what it foresees and once from what it read.
 */
import { formatHlc, hlcSend, tryParseHlc, type HlcState, type RecordPayload } from '@or3/sync-protocol';
import { noteTombstones, type ClockState } from '../clock-state.js';
import { newOp, type PendingOpRow } from '../outbox/index.js';
import type { SyncedTable, TombstoneRow } from '../schema.js';
import { rowSyncs } from '../table-conventions.js';

/** One captured write, before it is stamped. */
export interface LocalWrite {
  /** Index in the original request's values or keys. */
  index: number;
  pk: unknown;
  /** The app's new row, or null for a delete. */
  value: RecordPayload | null;
}

/** The inputs a write is stamped from. */
export interface StampInputs {
  rows: (RecordPayload | undefined)[];
  tombstones: (TombstoneRow | undefined)[];
  hlc: HlcState;
}

/** Everything of a write's stamping that does not depend on what is stored. */
export interface Stamping {
  deviceId: string;
  opIds: string[];
  /** `hlcNow()` for each write. */
  nows: number[];
  appNow: number;
  capturedAt: number;
  /** The engine's user, the ops' author (null: an engine attached without `userId`). */
  owner: string | null;
}

/** The rows, ops and tombstones a mutation writes, and the HLC after it. */
export interface WritePlan {
  puts: { write: LocalWrite; row: RecordPayload }[];
  removals: LocalWrite[];
  ops: PendingOpRow[];
  tombstones: TombstoneRow[];
  hlc: HlcState;
}

/** Stamps `writes` (PROTOCOL.md sections 2 and 6): a pure function of what is stored and the stamping. */
export function planWrites(synced: SyncedTable, writes: LocalWrite[], pks: string[], inputs: StampInputs, stamping: Stamping): WritePlan {
  const plan: WritePlan = { puts: [], removals: [], ops: [], tombstones: [], hlc: inputs.hlc };
  // Latest row and clock per key within this request, so a key written twice stacks its clocks.
  const current = new Map<string, { row: RecordPayload | undefined; clock: number }>();
  writes.forEach((write, i) => {
    const pk = pks[i]!;
    const stored = inputs.rows[i];
    // A row the table's filter keeps local is written as the app wrote it: no stamp, no op.
    const judged = write.value ?? current.get(pk)?.row ?? stored;
    if (judged && !rowSyncs(synced.conventions, judged)) {
      if (write.value) plan.puts.push({ write, row: write.value });
      else plan.removals.push(write);
      current.delete(pk);
      return;
    }
    const earlier = current.get(pk);
    const before = earlier ?? {
      row: stored,
      clock: Math.max(numberOr0(stored?.clock), numberOr0(inputs.tombstones[i]?.clock)),
    };
    const clock = before.clock + 1;
    // A write is stamped above this device's version it replaces (an earlier write of this request already is).
    if (!earlier) {
      plan.hlc = atLeast(atLeast(plan.hlc, stored?.hlc, stamping.deviceId), inputs.tombstones[i]?.hlc, stamping.deviceId);
    }
    plan.hlc = hlcSend(plan.hlc, stamping.nows[i]!);
    const stamp = formatHlc(plan.hlc.ms, plan.hlc.counter, stamping.deviceId);
    const opId = stamping.opIds[i]!;
    const isDelete = write.value === null || write.value.deleted === true;
    const row = isDelete
      ? tombstoneRow(synced, write.pk, write.value ?? before.row, clock, stamp, stamping.appNow)
      : liveRow(synced, write.value!, before.row, clock, stamp, stamping.appNow);
    current.set(pk, { row, clock });
    if (isDelete && synced.deletes === 'hard') plan.removals.push(write);
    else plan.puts.push({ write, row });
    if (isDelete) {
      plan.tombstones.push({
        table_name: synced.name,
        pk,
        clock,
        hlc: stamp,
        op_id: opId,
        deleted_at: numberOrNull(row.deleted_at),
        server_version: null,
        recorded_at: stamping.capturedAt,
      });
    }
    plan.ops.push(
      newOp(
        {
          op_id: opId,
          table_name: synced.name,
          operation: isDelete ? 'delete' : 'put',
          pk,
          payload: row,
          clock,
          hlc: stamp,
          device_id: stamping.deviceId,
        },
        stamping.capturedAt,
        stamping.owner,
      ),
    );
  });
  return plan;
}

/** Advances the transaction's clock state to `plan`'s HLC (in place, with no await in between). */
export function advance(state: ClockState, synced: SyncedTable, plan: WritePlan): void {
  state.ms = plan.hlc.ms;
  state.counter = plan.hlc.counter;
  if (plan.tombstones.length > 0) noteTombstones(state, [synced.name]);
}

function liveRow(
  synced: SyncedTable,
  value: RecordPayload,
  before: RecordPayload | undefined,
  clock: number,
  hlc: string,
  appNow: number,
): RecordPayload {
  const row: RecordPayload = {
    ...value,
    clock,
    hlc,
    deleted: false,
    deleted_at: null,
    created_at: value.created_at ?? before?.created_at ?? appNow,
    updated_at: appNow,
  };
  if (synced.orderKey) row.order_key = before?.order_key ?? value.order_key ?? hlc;
  return row;
}

function tombstoneRow(
  synced: SyncedTable,
  pk: unknown,
  base: RecordPayload | null | undefined,
  clock: number,
  hlc: string,
  appNow: number,
): RecordPayload {
  const row: RecordPayload = {
    ...(base ?? {}),
    [synced.primaryKey]: pk,
    clock,
    hlc,
    deleted: true,
    deleted_at: base?.deleted === true && typeof base.deleted_at === 'number' ? base.deleted_at : appNow,
    updated_at: appNow,
  };
  if (row.created_at === undefined) row.created_at = appNow;
  return row;
}

/** The last tombstone of each pk (a request may delete one key twice). */
export function dedupeLast(tombstones: TombstoneRow[]): TombstoneRow[] {
  const byPk = new Map<string, TombstoneRow>();
  for (const t of tombstones) byPk.set(t.pk, t);
  return [...byPk.values()];
}

/**
 * `state`, raised to the time and counter of `stamp` when that is this
 * device's and later, so the next `hlcSend` stamps above it. The clock state
 * alone does not promise that: a clock_skew re-stamp pulls it back to
 * corrected time while writes stamped by the fast clock may still wait in the
 * outbox. An edit stamped below such a pending write would be applied in the
 * batch that has the write rejected, and the server would keep the rejected
 * stamp as the message's `order_key` (PROTOCOL.md section 1) while the
 * re-stamp moves the device's own copy. Stamped above it, the edit is
 * rejected with it and both are re-stamped together. Other devices' stamps
 * never wait in this outbox, and the clock receives them with its drift
 * bound (a stamp minutes ahead must not drag every later write along).
 */
function atLeast(state: HlcState, stamp: unknown, deviceId: string): HlcState {
  const parsed = typeof stamp === 'string' ? tryParseHlc(stamp) : null;
  if (parsed === null || parsed.deviceId !== deviceId) return state;
  if (parsed.ms > state.ms || (parsed.ms === state.ms && parsed.counter > state.counter)) {
    return { ms: parsed.ms, counter: parsed.counter };
  }
  return state;
}

function numberOr0(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' ? value : null;
}
