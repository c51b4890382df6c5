/**
 * The oracle finds what it is meant to: a consistent world passes, and each
 * kind of breakage is reported under the rule it breaks.
 */
import type { Change, OpResult, PushOp, SnapshotItem } from '@or3/sync-client';
import { describe, expect, it } from 'vitest';
import { checkConvergence, expectedRow, type CheckInput } from '../src/invariants.js';
import type { DeviceState } from '../src/simulated-device.js';

const DEV = 'aaaaaaaaaaaaaaaa';
const hlc = (ms: number, counter = 0) => `${1732540000000 + ms}-${String(counter).padStart(6, '0')}-${DEV}`;
const TABLES: CheckInput['tables'] = {
  threads: { deletes: 'soft', primaryKey: 'id' },
  messages: { deletes: 'soft', primaryKey: 'id' },
  kv: { deletes: 'hard', primaryKey: 'id' },
};

function op(n: number, table: string, pk: string, operation: 'put' | 'delete', clock: number, payload: Record<string, unknown>): PushOp {
  const stamp = hlc(n * 10);
  return {
    op_id: `op-${n}`,
    table_name: table,
    operation,
    pk,
    payload: { id: pk, ...payload, clock, hlc: stamp, deleted: operation === 'delete' },
    clock,
    hlc: stamp,
    device_id: DEV,
  };
}

/** Five applied ops, their log, the snapshot they fold to, and two devices holding it. */
function world(): CheckInput {
  const ops = [
    op(1, 'threads', 't1', 'put', 1, { title: 'one' }),
    op(2, 'messages', 'm1', 'put', 1, { thread_id: 't1', index: 0, order_key: hlc(20) }),
    op(3, 'kv', 'k1', 'put', 1, { value: 1 }),
    op(4, 'kv', 'k1', 'delete', 2, { value: 1, deleted_at: 5 }),
    op(5, 'threads', 't1', 'put', 2, { title: 'two' }),
    op(6, 'messages', 'm2', 'put', 1, { thread_id: 't1', index: 1, order_key: hlc(60) }),
  ];
  const log: Change[] = ops.map((o, i) => ({ ...o, server_version: i + 1, scope_change: false }));
  const last = new Map<string, Change>();
  for (const change of log) last.set(`${change.table_name}/${change.pk}`, change);
  const items: SnapshotItem[] = [...last.values()].map((c) => ({
    table_name: c.table_name,
    pk: c.pk,
    payload: c.payload,
    deleted: c.operation === 'delete',
    clock: c.clock,
    hlc: c.hlc,
    op_id: c.op_id,
    server_version: c.server_version,
  }));
  const device = (name: string): DeviceState => {
    const rows: DeviceState['rows'] = { threads: [], messages: [], kv: [] };
    for (const item of items) {
      const row = expectedRow(item, TABLES[item.table_name]!);
      if (row) rows[item.table_name]!.push(row);
    }
    return {
      name,
      rows,
      tombstones: items
        .filter((i) => i.deleted)
        .map((i) => ({ table_name: i.table_name, pk: i.pk, clock: i.clock, hlc: i.hlc, op_id: i.op_id, deleted_at: 5, server_version: i.server_version, recorded_at: 0 })),
      pending: 0,
      failed: 0,
      cursor: log.length,
    };
  };
  return {
    devices: [device('d0'), device('d1')],
    server: { snapshotVersion: log.length, items, log, oldestRetainedVersion: 1 },
    sent: new Map(ops.map((o) => [o.op_id, { device: 'd0', op: o }])),
    received: ops.map((o, i) => ({ device: 'd0', op: o, result: { op_id: o.op_id, status: 'applied', server_version: i + 1 } as OpResult })),
    tables: TABLES,
    // d1 held t1 and k1 (hard-deleted since, its stamp kept) before sync was switched on.
    preexisting: [
      { device: 'd1', table: 'threads', pk: 't1' },
      { device: 'd1', table: 'kv', pk: 'k1' },
    ],
  };
}

const rules = (input: CheckInput) => [...new Set(checkConvergence(input).map((v) => v.rule))].sort();

describe('the convergence oracle', () => {
  it('passes a world where everything converged and nothing was lost', () => {
    expect(checkConvergence(world())).toEqual([]);
  });

  it('preexisting_row_reaches_the_server: a row a device had before sync that the server never got', () => {
    const w = world();
    w.preexisting!.push({ device: 'd1', table: 'threads', pk: 'lost-at-first-sync' });
    expect(rules(w)).toEqual(['preexisting_row_reaches_the_server']);
  });

  it('server_versions_have_no_gaps', () => {
    const w = world();
    w.server.log.splice(2, 1);
    expect(rules(w)).toContain('server_versions_have_no_gaps');
  });

  it('op_id_appears_once_in_the_log', () => {
    const w = world();
    w.server.log[4] = { ...w.server.log[4]!, op_id: 'op-1' };
    expect(rules(w)).toContain('op_id_appears_once_in_the_log');
  });

  it('log_holds_only_winners', () => {
    const w = world();
    w.server.log[4] = { ...w.server.log[4]!, clock: 1, hlc: hlc(1) };
    expect(rules(w)).toContain('log_holds_only_winners');
  });

  it('acknowledged_write_is_never_lost: an applied write the server no longer holds', () => {
    const w = world();
    const newer = op(9, 'threads', 't1', 'put', 3, { title: 'acked, then lost' });
    w.sent.set(newer.op_id, { device: 'd1', op: newer });
    w.received.push({ device: 'd1', op: newer, result: { op_id: newer.op_id, status: 'applied', server_version: 5 } });
    expect(rules(w)).toEqual(expect.arrayContaining(['acknowledged_write_is_never_lost', 'applied_result_names_its_log_entry']));
  });

  it('deleted_record_never_comes_back: a live record at a stamp the acknowledged delete beat', () => {
    const w = world();
    const k1 = w.server.items.find((i) => i.pk === 'k1')!;
    Object.assign(k1, { deleted: false, clock: 1, hlc: hlc(30), op_id: 'op-3', payload: { id: 'k1', value: 1 } });
    expect(rules(w)).toContain('deleted_record_never_comes_back');
  });

  it('superseded_op_lost_to_a_logged_winner', () => {
    const w = world();
    const stale = op(8, 'threads', 't1', 'put', 2, { title: 'stale' });
    w.sent.set(stale.op_id, { device: 'd1', op: stale });
    const winner = { clock: 1, hlc: hlc(10), op_id: 'op-1', server_version: 1, deleted: false, payload: null };
    w.received.push({ device: 'd1', op: stale, result: { op_id: stale.op_id, status: 'superseded', winner } });
    expect(rules(w)).toEqual(['superseded_op_lost_to_a_logged_winner']);
  });

  it('every_sent_op_is_answered', () => {
    const w = world();
    w.received.pop();
    expect(rules(w)).toEqual(['every_sent_op_is_answered']);
  });

  it('every_device_holds_the_same_rows and devices_match_the_server_snapshot', () => {
    const w = world();
    w.devices[1]!.rows.threads![0]!.title = 'diverged';
    expect(rules(w)).toEqual(['devices_match_the_server_snapshot', 'every_device_holds_the_same_rows']);
  });

  it('a device that kept a hard-deleted row breaks devices_match_the_server_snapshot', () => {
    const w = world();
    w.devices[0]!.rows.kv!.push({ id: 'k1', value: 1, clock: 1, hlc: hlc(30), deleted: false, deleted_at: null });
    expect(rules(w)).toContain('devices_match_the_server_snapshot');
  });

  it('tombstone_stamps_match_the_server', () => {
    const w = world();
    w.devices[1]!.tombstones = [];
    expect(rules(w)).toEqual(['tombstone_stamps_match_the_server']);
  });

  it('message_order_is_identical_on_every_device', () => {
    const w = world();
    const [m1, m2] = w.devices[1]!.rows.messages!;
    [m1!.index, m2!.index] = [1, 0];
    expect(rules(w)).toContain('message_order_is_identical_on_every_device');
  });

  it('order_key_is_the_creating_hlc', () => {
    const w = world();
    for (const device of w.devices) device.rows.messages![0]!.order_key = hlc(999);
    w.server.items.find((i) => i.pk === 'm1')!.payload!.order_key = hlc(999);
    expect(rules(w)).toEqual(['order_key_is_the_creating_hlc']);
  });

  it('outbox_drains_and_cursor_reaches_head', () => {
    const w = world();
    w.devices[0]!.pending = 2;
    w.devices[1]!.cursor = 3;
    expect(rules(w)).toEqual(['outbox_drains_and_cursor_reaches_head']);
  });

  it('no_op_is_rejected, except a retryable clock_skew', () => {
    const w = world();
    const bad = op(7, 'threads', 't9', 'put', 1, {});
    w.received.push({ device: 'd0', op: bad, result: { op_id: bad.op_id, status: 'rejected', error: { code: 'clock_skew', message: 'ahead', retryable: true } } });
    expect(rules(w)).toEqual([]);
    w.received.push({ device: 'd0', op: bad, result: { op_id: bad.op_id, status: 'rejected', error: { code: 'invalid_pk', message: 'bad' } } });
    expect(rules(w)).toEqual(['no_op_is_rejected']);
  });

  it('compares only the stamp of a tombstone whose payload retention purged', () => {
    const w = world();
    const k1 = w.server.items.find((i) => i.pk === 'k1')!;
    const t = w.server.items.find((i) => i.pk === 't1')!;
    k1.payload = null;
    Object.assign(t, { deleted: true, payload: null });
    for (const device of w.devices) {
      device.tombstones.push({ table_name: 'threads', pk: 't1', clock: t.clock, hlc: t.hlc, op_id: t.op_id, deleted_at: null, server_version: 5, recorded_at: 0 });
      Object.assign(device.rows.threads![0]!, { deleted: true });
    }
    // Each device kept a different tombstone body: undefined once the server purged it.
    w.devices[1]!.rows.threads![0]!.title = 'old body';
    expect(rules(w)).toEqual([]);
  });
});
