/** A `SyncProvider` test double whose answers the test scripts. */
import {
  SyncProviderError,
  type ChangesBatch,
  type SubscribeOptions,
  type SyncProvider,
  type SyncProviderErrorInit,
  type SyncScope,
  type Unsubscribe,
} from '../../src/provider.js';
import type { ChangesPage, OpResult, PushOp, PushResponse, SnapshotItem, SnapshotPage } from '@or3/sync-protocol';

export type PushHandler = (ops: PushOp[], call: number) => PushResponse | Promise<PushResponse>;

/** A subscription the engine opened; the test plays the server through it. */
export interface ScriptedSubscription {
  cursor: number;
  onChanges: (batch: ChangesBatch) => void | Promise<void>;
  onError: (error: SyncProviderError) => void;
  options: SubscribeOptions;
  stopped: boolean;
}

export class ScriptedProvider implements SyncProvider {
  readonly mode = 'gateway' as const;
  maxPayloadBytes = 1024 * 1024;
  lastRateLimitRemaining: number | null = null;
  maxOpsPerPush: number | null = null;
  pushes: PushOp[][] = [];
  pulls: number[] = [];
  /** Changes served by `pull`, by server_version. */
  log: ChangesPage['changes'] = [];
  snapshotItems: SnapshotItem[] = [];
  /** Defaults to the end of `log`. */
  snapshotVersion: number | null = null;
  /** Items per snapshot page; all in one page when null. */
  snapshotPageSize: number | null = null;
  records = new Map<string, SnapshotItem>();
  /** The highest server_version the default `onPush` gave. */
  private versionsGiven = 0;
  /** Applies every op, at versions past the log and every version given before (a server's versions have no gaps and never repeat). */
  onPush: PushHandler = (ops) => {
    const base = Math.max(this.versionsGiven, this.log.at(-1)?.server_version ?? 0);
    this.versionsGiven = base + ops.length;
    return { results: ops.map((op, i) => applied(op, base + i + 1)), server_version: base + ops.length };
  };
  pushFailures: SyncProviderErrorInit[] = [];

  async push(_scope: SyncScope, ops: PushOp[]): Promise<PushResponse> {
    this.pushes.push(ops.map((op) => structuredClone(op)));
    const failure = this.pushFailures.shift();
    if (failure) throw new SyncProviderError(failure);
    return this.onPush(ops, this.pushes.length);
  }

  async pull(_scope: SyncScope, cursor: number, limit = 500): Promise<ChangesPage> {
    this.pulls.push(cursor);
    const changes = this.log.filter((c) => c.server_version > cursor).slice(0, limit);
    const last = changes.at(-1)?.server_version ?? Math.max(cursor, this.log.at(-1)?.server_version ?? 0);
    return { changes, cursor: last, has_more: this.log.some((c) => c.server_version > last), oldest_retained_version: 1 };
  }

  async snapshot(_scope: SyncScope, pageToken: string | null): Promise<SnapshotPage> {
    const version = this.snapshotVersion ?? this.log.at(-1)?.server_version ?? 0;
    const start = pageToken === null ? 0 : Number(pageToken);
    const end = this.snapshotPageSize === null ? this.snapshotItems.length : start + this.snapshotPageSize;
    const next = end < this.snapshotItems.length ? String(end) : null;
    return { snapshot_version: version, items: this.snapshotItems.slice(start, end), next_page_token: next };
  }

  async getRecord(_scope: SyncScope, tableName: string, pk: string): Promise<SnapshotItem | null> {
    return this.records.get(`${tableName}/${pk}`) ?? null;
  }

  subscriptions: ScriptedSubscription[] = [];

  subscribe(
    _scope: SyncScope,
    cursor: number,
    onChanges: (batch: ChangesBatch) => void | Promise<void>,
    onError: (error: SyncProviderError) => void,
    options: SubscribeOptions = {},
  ): Unsubscribe {
    const subscription: ScriptedSubscription = { cursor, onChanges, onError, options, stopped: false };
    this.subscriptions.push(subscription);
    return () => {
      subscription.stopped = true;
    };
  }

  dispose(): void {}
}

export function applied(op: PushOp, version: number): OpResult {
  return { op_id: op.op_id, status: 'applied', server_version: version };
}
