/**
 * The oracle: what must hold once faults stop and every device has synced.
 * Each rule has a name (the name a regression test of a broken rule takes)
 * and is checked from raw data only: the devices' tables, the server's
 * snapshot and log, and the results clients received. The checks do not use
 * the engine's own LWW code, so a bug there cannot hide itself.
 */
import type { Change, OpResult, PushOp, SnapshotItem, TombstoneRow } from '@or3/sync-client';
import type { ReceivedResult } from './ack-ledger.js';
import type { ServerState } from './server-state.js';
import type { DeviceState } from './simulated-device.js';

/** A broken rule, with what broke it. */
export interface Violation {
  rule: string;
  detail: string;
}

export interface CheckInput {
  devices: DeviceState[];
  server: ServerState;
  /** Every op sent, by op id, and every result that reached a client. */
  sent: Map<string, { device: string; op: PushOp }>;
  received: ReceivedResult[];
  /** How each synced table deletes and its primary key field. */
  tables: Record<string, { deletes: 'soft' | 'hard'; primaryKey: string }>;
  /** The server's snapshot of each project some device syncs alone (`projectId`). */
  scopedSnapshots?: Record<string, SnapshotItem[]>;
  /** Records devices held before sync was switched on. */
  preexisting?: { device: string; table: string; pk: string }[];
}

/** A write's LWW stamp. */
export interface Stamp {
  clock: number;
  hlc: string;
  op_id: string;
}

/** LWW order: (clock, hlc, op_id) as (integer, bytes, bytes). */
export function compareStamps(a: Stamp, b: Stamp): number {
  if (a.clock !== b.clock) return a.clock < b.clock ? -1 : 1;
  if (a.hlc !== b.hlc) return a.hlc < b.hlc ? -1 : 1;
  if (a.op_id !== b.op_id) return a.op_id < b.op_id ? -1 : 1;
  return 0;
}

function isDeleted(item: SnapshotItem): boolean {
  return item.deleted || item.payload?.deleted === true;
}

function stamp(v: { clock: number; hlc: string; op_id: string }): Stamp {
  return { clock: v.clock, hlc: v.hlc, op_id: v.op_id };
}

function showStamp(s: Stamp): string {
  return `(${s.clock}, ${s.hlc}, ${s.op_id})`;
}

const key = (table: string, pk: string) => `${table}/${pk}`;

/** JSON with sorted keys, so equal rows print equal. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** The local row a snapshot item must be on every device (null: no row, a hard delete). */
export function expectedRow(
  item: SnapshotItem,
  table: { deletes: 'soft' | 'hard'; primaryKey: string },
): Record<string, unknown> | null {
  const deleted = isDeleted(item);
  if (deleted && table.deletes === 'hard') return null;
  const payload = item.payload ?? {};
  return {
    ...payload,
    [table.primaryKey]: item.pk,
    clock: item.clock,
    hlc: item.hlc,
    deleted,
    deleted_at: deleted ? (typeof payload.deleted_at === 'number' ? payload.deleted_at : null) : null,
  };
}

/**
 * What of a row the checks compare: all of it, except for a tombstone whose
 * payload the server purged (retention), where only the stamp is defined.
 */
function projectRow(row: Record<string, unknown>, item: SnapshotItem | undefined): Record<string, unknown> {
  if (!item || !isDeleted(item) || item.payload !== null) return row;
  return { id: row.id, clock: row.clock, hlc: row.hlc, deleted: row.deleted };
}

/** Runs every rule; an empty list means the run converged and lost nothing. */
export function checkConvergence(input: CheckInput): Violation[] {
  const out = new ViolationList();
  const { server } = input;
  const head = server.log.at(-1)?.server_version ?? server.oldestRetainedVersion - 1;

  // --- the server's log on its own
  let expected = server.oldestRetainedVersion;
  for (const change of server.log) {
    if (change.server_version !== expected) {
      out.add('server_versions_have_no_gaps', `expected version ${expected}, found ${change.server_version}`);
      expected = change.server_version;
    }
    expected += 1;
  }
  if (server.snapshotVersion !== head) {
    out.add('server_versions_have_no_gaps', `snapshot_version ${server.snapshotVersion} but the log ends at ${head}`);
  }
  const logByOpId = new Map<string, Change>();
  for (const change of server.log) {
    if (logByOpId.has(change.op_id)) {
      out.add('op_id_appears_once_in_the_log', `${change.op_id} at ${logByOpId.get(change.op_id)!.server_version} and ${change.server_version}`);
    } else {
      logByOpId.set(change.op_id, change);
    }
  }
  const lastByRecord = new Map<string, Change>();
  for (const change of server.log) {
    const k = key(change.table_name, change.pk);
    const previous = lastByRecord.get(k);
    if (previous && compareStamps(stamp(change), stamp(previous)) <= 0) {
      out.add(
        'log_holds_only_winners',
        `${k}: version ${change.server_version} ${showStamp(stamp(change))} does not beat version ${previous.server_version} ${showStamp(stamp(previous))}`,
      );
    }
    lastByRecord.set(k, change);
  }
  const logByVersion = new Map(server.log.map((change) => [change.server_version, change]));
  const items = new Map(server.items.map((item) => [key(item.table_name, item.pk), item]));
  // A row from before sync was adopted and pushed (or deleted later, which leaves a tombstone): the
  // server has the record. A record it lacks was lost by the device, as a first sync used to do.
  for (const row of input.preexisting ?? []) {
    if (!items.has(key(row.table, row.pk))) {
      out.add('preexisting_row_reaches_the_server', `${row.device} had ${row.table}/${row.pk} before sync; the server never got it`);
    }
  }
  for (const [k, change] of lastByRecord) {
    const item = items.get(k);
    if (!item) out.add('snapshot_is_the_last_log_entry_of_each_record', `${k} is in the log but not in the snapshot`);
    else if (compareStamps(stamp(item), stamp(change)) !== 0 || item.server_version !== change.server_version) {
      out.add(
        'snapshot_is_the_last_log_entry_of_each_record',
        `${k}: snapshot ${showStamp(stamp(item))}@${item.server_version}, log ${showStamp(stamp(change))}@${change.server_version}`,
      );
    }
  }
  if (server.oldestRetainedVersion <= 1) {
    for (const k of items.keys()) {
      if (!lastByRecord.has(k)) out.add('snapshot_is_the_last_log_entry_of_each_record', `${k} is in the snapshot but not in the log`);
    }
  }

  // --- what the clients were told
  for (const { device, op, result } of input.received) {
    const k = key(op.table_name, op.pk);
    const item = items.get(k);
    checkResult(out, device, op, result, item, logByOpId, logByVersion, server.oldestRetainedVersion);
  }
  const answered = new Set(input.received.map((r) => r.result.op_id));
  for (const [opId, { device, op }] of input.sent) {
    if (!answered.has(opId)) {
      out.add('every_sent_op_is_answered', `${device} sent ${op.operation} ${key(op.table_name, op.pk)} op ${opId} and never got its result`);
    }
  }

  // --- the devices
  for (const device of input.devices) {
    if (device.pending !== 0 || device.failed !== 0) {
      out.add('outbox_drains_and_cursor_reaches_head', `${device.name}: ${device.pending} pending, ${device.failed} failed ops`);
    }
    if (device.cursor !== head) {
      out.add('outbox_drains_and_cursor_reaches_head', `${device.name}: cursor ${device.cursor}, head ${head}`);
    }
  }
  /** What a device of `projectId`'s scope must hold: its rows by table, and its tombstone stamps. */
  const expectedFor = (projectId: string | null) => {
    const rows = new Map<string, Map<string, string>>();
    for (const table of Object.keys(input.tables)) rows.set(table, new Map());
    const tombstones = new Map<string, string>();
    const scopeItems = projectId === null ? server.items : (input.scopedSnapshots?.[projectId] ?? []);
    for (const item of scopeItems) {
      const table = input.tables[item.table_name];
      if (!table) continue;
      const row = expectedRow(item, table);
      if (row) rows.get(item.table_name)!.set(item.pk, canonical(projectRow(row, item)));
      if (isDeleted(item)) tombstones.set(key(item.table_name, item.pk), canonical(stamp(item)));
    }
    return { rows, tombstones };
  };
  const rowsOf = (device: DeviceState, table: string) =>
    new Map(
      (device.rows[table] ?? []).map((row) => {
        const pk = String(row[input.tables[table]!.primaryKey]);
        return [pk, canonical(projectRow(row, items.get(key(table, pk))))];
      }),
    );
  const references = new Map<string | null, DeviceState>();
  for (const device of input.devices) {
    const scope = device.projectId ?? null;
    const expected = expectedFor(scope);
    const who = scope === null ? 'server' : `server's project ${scope}`;
    const reference = references.get(scope);
    if (!reference) references.set(scope, device);
    for (const [table, rows] of expected.rows) {
      const actual = rowsOf(device, table);
      diffRows(out, 'devices_match_the_server_snapshot', `${device.name} vs ${who}`, table, rows, actual);
      if (reference) {
        diffRows(out, 'every_device_holds_the_same_rows', `${reference.name} vs ${device.name}`, table, rowsOf(reference, table), actual);
      }
    }
    checkTombstones(out, device, expected.tombstones, items, input.tables);
  }
  checkMessageOrder(out, input);
  return out.list();
}

/**
 * A device keeps the stamp of every deleted record, equal to the server's
 * tombstone; a stamp of a record written again since is older than the
 * live version (the engine keeps it until retention prunes it).
 */
function checkTombstones(
  out: ViolationList,
  device: DeviceState,
  expectedTombstones: Map<string, string>,
  items: Map<string, SnapshotItem>,
  tables: CheckInput['tables'],
): void {
  const held = new Map<string, TombstoneRow>();
  for (const t of device.tombstones) if (tables[t.table_name]) held.set(key(t.table_name, t.pk), t);
  for (const [k, expected] of expectedTombstones) {
    const t = held.get(k);
    if (!t) out.add('tombstone_stamps_match_the_server', `${device.name}: no tombstone for the deleted ${k} (server ${expected})`);
    else if (canonical(stamp(t)) !== expected) {
      out.add('tombstone_stamps_match_the_server', `${device.name}: tombstone of ${k} is ${canonical(stamp(t))}, server ${expected}`);
    }
  }
  for (const [k, t] of held) {
    if (expectedTombstones.has(k)) continue;
    const item = items.get(k);
    if (!item) out.add('tombstone_stamps_match_the_server', `${device.name}: tombstone of ${k}, which the server does not know`);
    else if (isDeleted(item) && compareStamps(stamp(t), stamp(item)) === 0) {
      // The tombstone of a record outside a project-scoped device's scope: it may keep it.
    } else if (compareStamps(stamp(t), stamp(item)) >= 0) {
      out.add('tombstone_stamps_match_the_server', `${device.name}: tombstone ${showStamp(stamp(t))} of ${k} is not older than the live ${showStamp(stamp(item))}`);
    }
  }
}

/** One result a client received, against the final state and the log. */
function checkResult(
  out: ViolationList,
  device: string,
  op: PushOp,
  result: OpResult,
  item: SnapshotItem | undefined,
  logByOpId: Map<string, Change>,
  logByVersion: Map<number, Change>,
  oldestRetained: number,
): void {
  const k = key(op.table_name, op.pk);
  const mine = stamp(op);
  const what = `${device}'s ${op.operation} ${k} ${showStamp(mine)}`;
  if (result.status === 'applied' || result.status === 'duplicate') {
    if (!item) {
      out.add('acknowledged_write_is_never_lost', `${what} was ${result.status} but the server has no such record`);
      return;
    }
    const order = compareStamps(stamp(item), mine);
    if (order < 0) {
      out.add('acknowledged_write_is_never_lost', `${what} was ${result.status}, yet the server holds the older ${showStamp(stamp(item))}`);
    }
    if (order > 0 && item.server_version >= oldestRetained && !logByOpId.has(item.op_id)) {
      out.add('acknowledged_write_is_never_lost', `${what} lost to ${item.op_id}, which is not in the log`);
    }
    if (op.operation === 'delete' && order <= 0 && !isDeleted(item)) {
      out.add('deleted_record_never_comes_back', `${what} was ${result.status}, yet the record is live at ${showStamp(stamp(item))}`);
    }
    const version = result.server_version;
    if (typeof version === 'number') {
      if (version < oldestRetained) return; // purged by GC: nothing left to compare
      const logged = logByVersion.get(version);
      const sameWrite = logged && (logged.op_id === op.op_id || (logged.clock === op.clock && logged.hlc === op.hlc));
      if (!sameWrite) {
        out.add('applied_result_names_its_log_entry', `${what} was ${result.status} at ${version}, where the log has ${logged ? showStamp(stamp(logged)) : 'nothing'}`);
      }
    } else if (result.status === 'applied') {
      out.add('applied_result_names_its_log_entry', `${what} was applied without a server_version`);
    }
  } else if (result.status === 'superseded') {
    const winner = result.winner;
    if (compareStamps(stamp(winner), mine) <= 0) {
      out.add('superseded_op_lost_to_a_logged_winner', `${what} was superseded by the no greater ${showStamp(stamp(winner))}`);
    }
    if (winner.server_version >= oldestRetained && logByOpId.get(winner.op_id)?.server_version !== winner.server_version) {
      out.add('superseded_op_lost_to_a_logged_winner', `${what} lost to ${winner.op_id}@${winner.server_version}, which the log does not hold there`);
    }
    if (item && compareStamps(stamp(item), stamp(winner)) < 0) {
      out.add('acknowledged_write_is_never_lost', `${what}: its winner ${showStamp(stamp(winner))} was later replaced by the older ${showStamp(stamp(item))}`);
    }
  } else if (!result.error.retryable) {
    // The harness writes only valid ops; a clock_skew rejection is retryable (the op is re-stamped).
    out.add('no_op_is_rejected', `${what} was rejected: ${result.error.code} ${result.error.message}`);
  }
}

/**
 * Display order `(index, order_key, id)` of each thread, equal everywhere,
 * and each message's `order_key` the hlc of the op that created it (its
 * clock-1 put, as last sent).
 */
function checkMessageOrder(out: ViolationList, input: CheckInput): void {
  const creationHlc = new Map<string, string>();
  for (const { op } of input.sent.values()) {
    if (op.table_name === 'messages' && op.operation === 'put' && op.clock === 1) creationHlc.set(op.pk, op.hlc);
  }
  let reference: Map<string, string> | null = null;
  let referenceName = '';
  for (const device of input.devices) {
    const threads = new Map<string, Record<string, unknown>[]>();
    for (const message of device.rows.messages ?? []) {
      if (message.deleted === true) continue;
      const thread = String(message.thread_id);
      if (!threads.has(thread)) threads.set(thread, []);
      threads.get(thread)!.push(message);
      const created = creationHlc.get(String(message.id));
      if (typeof message.order_key !== 'string') {
        out.add('order_key_is_the_creating_hlc', `${device.name}: message ${String(message.id)} has no order_key`);
      } else if (created !== undefined && created !== message.order_key) {
        out.add('order_key_is_the_creating_hlc', `${device.name}: message ${String(message.id)} has order_key ${message.order_key}, created at ${created}`);
      }
    }
    const orders = new Map<string, string>();
    for (const [thread, messages] of threads) {
      messages.sort(displayOrder);
      orders.set(thread, messages.map((m) => String(m.id)).join(','));
    }
    if (!reference && !device.projectId) {
      reference = orders;
      referenceName = device.name;
      continue;
    }
    if (!reference) continue;
    // A device syncing one project holds that project's threads only.
    const threadsToCompare = device.projectId ? orders.keys() : new Set([...reference.keys(), ...orders.keys()]);
    for (const thread of threadsToCompare) {
      if (reference.get(thread) !== orders.get(thread)) {
        out.add(
          'message_order_is_identical_on_every_device',
          `thread ${thread}: ${referenceName} [${reference.get(thread) ?? ''}] vs ${device.name} [${orders.get(thread) ?? ''}]`,
        );
      }
    }
  }
}

function displayOrder(a: Record<string, unknown>, b: Record<string, unknown>): number {
  const ai = Number(a.index);
  const bi = Number(b.index);
  if (ai !== bi) return ai < bi ? -1 : 1;
  const ak = String(a.order_key);
  const bk = String(b.order_key);
  if (ak !== bk) return ak < bk ? -1 : 1;
  const aid = String(a.id);
  const bid = String(b.id);
  return aid < bid ? -1 : aid > bid ? 1 : 0;
}

function diffRows(
  out: ViolationList,
  rule: string,
  who: string,
  table: string,
  expected: Map<string, string>,
  actual: Map<string, string>,
): void {
  for (const [pk, row] of expected) {
    const found = actual.get(pk);
    if (found === undefined) out.add(rule, `${who}: ${table}/${pk} missing (expected ${row})`);
    else if (found !== row) out.add(rule, `${who}: ${table}/${pk} is ${found}, expected ${row}`);
  }
  for (const [pk, row] of actual) {
    if (!expected.has(pk)) out.add(rule, `${who}: ${table}/${pk} should not exist (found ${row})`);
  }
}

/** Violations, at most a few details per rule (the count says how many). */
class ViolationList {
  private readonly byRule = new Map<string, { count: number; details: string[] }>();

  add(rule: string, detail: string): void {
    let entry = this.byRule.get(rule);
    if (!entry) this.byRule.set(rule, (entry = { count: 0, details: [] }));
    entry.count += 1;
    if (entry.details.length < 5) entry.details.push(detail);
  }

  list(): Violation[] {
    const out: Violation[] = [];
    for (const [rule, { count, details }] of this.byRule) {
      for (const detail of details) out.push({ rule, detail });
      if (count > details.length) out.push({ rule, detail: `... and ${count - details.length} more` });
    }
    return out;
  }
}
