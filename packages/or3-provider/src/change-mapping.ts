/**
 * Gateway versions as OR3 reads them: pull changes, snapshot items and push
 * winners, with stamps and row HLCs in OR3's spelling. Server times become
 * epoch seconds, the unit of OR3's own server-side timestamps.
 */
import { toOr3Device, toOr3Hlc } from './hlc-mapping.js';
import { toOr3Payload } from './payload-mapping.js';
import type { GatewayChange, GatewayRecordVersion, GatewayWinner } from './gateway-wire.js';
import type { PushWinner, SnapshotItem, SnapshotRevision, SyncChange } from './or3-types.js';

const revisionOf = (v: { clock: number; hlc: string; op_id: string }): SnapshotRevision => ({
  clock: v.clock,
  hlc: toOr3Hlc(v.hlc),
  opId: v.op_id,
});

/** Epoch ms (the gateway's commit time) as epoch seconds. */
export const toEpochSeconds = (ms: number): number => Math.floor(ms / 1000);

/** One pulled change. */
export function toOr3Change(change: GatewayChange): SyncChange {
  return {
    serverVersion: change.server_version,
    tableName: change.table_name,
    pk: change.pk,
    op: change.operation,
    payload: toOr3Payload(change.payload),
    stamp: {
      deviceId: toOr3Device(change.device_id),
      opId: change.op_id,
      hlc: toOr3Hlc(change.hlc),
      clock: change.clock,
    },
  };
}

/** One snapshot item: a live row, or a tombstone with the server's delete time. */
export function toOr3SnapshotItem(item: GatewayRecordVersion): SnapshotItem {
  const base = { tableName: item.table_name, pk: item.pk, revision: revisionOf(item) };
  if (item.deleted && typeof item.committed_at !== 'number') {
    // A gateway older than the OR3 additions: no delete time, and OR3 needs one.
    throw new Error(`the gateway's snapshot item ${item.table_name}/${item.pk} has no committed_at`);
  }
  return item.deleted
    ? { kind: 'tombstone', ...base, serverDeletedAt: toEpochSeconds(item.committed_at) }
    : { kind: 'row', ...base, payload: toOr3Payload(item.payload) };
}

/** The stored version a pushed op lost to. */
export function toOr3Winner(winner: GatewayWinner): PushWinner {
  return winner.deleted
    ? { kind: 'delete', revision: revisionOf(winner) }
    : { kind: 'put', payload: toOr3Payload(winner.payload), revision: revisionOf(winner) };
}
