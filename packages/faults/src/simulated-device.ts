/**
 * One simulated device: its own fake-indexeddb (so its own database), a
 * `GatewayProvider` whose requests go through the fault proxy in the device's
 * lane, and the real engine on top. The device can go offline (its requests
 * fail as with no network), reload (close the engine and database and open
 * them again), and report the state the checks compare.
 */
import { Dexie } from 'dexie';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import {
  GatewayProvider,
  openWorkspace,
  type OpenWorkspaceOptions,
  type OpResult,
  type PushOp,
  type SyncEngine,
  type TombstoneRow,
} from '@or3/sync-client';
import WebSocket from 'ws';
import type { AckLedger } from './ack-ledger.js';
import { LANE_HEADER, type FaultProxy } from './fault-proxy.js';

// Dexie's liveQuery needs an IndexedDB in its dependencies; each device still gets its own factory.
Dexie.dependencies.indexedDB ??= new IDBFactory();
Dexie.dependencies.IDBKeyRange ??= IDBKeyRange;

/** OR3 Chat's tables the harness writes: soft-deleting threads and messages, hard-deleting kv. */
export const APP_SCHEMA = {
  threads: 'id, updated_at',
  messages: 'id, thread_id, [thread_id+index]',
  kv: 'id',
};

export const SYNCED_TABLES = {
  threads: {},
  messages: {},
  kv: { deletes: 'hard' as const },
};

export type SyncedTableName = keyof typeof SYNCED_TABLES;
export const SYNCED_TABLE_NAMES = Object.keys(SYNCED_TABLES) as SyncedTableName[];

/** How each synced table deletes. */
export function deleteMode(table: string): 'soft' | 'hard' {
  return (SYNCED_TABLES as Record<string, { deletes?: 'soft' | 'hard' }>)[table]?.deletes ?? 'soft';
}

export interface DeviceOptions {
  name: string;
  workspaceId: string;
  /** Where requests go: the proxy's origin. */
  baseUrl: string;
  token: string;
  ledger: AckLedger;
  /** To cut the device's sockets when it goes offline. */
  proxy?: FaultProxy;
  engine?: Partial<OpenWorkspaceOptions>;
  pollIntervalMs?: number;
  /** Snapshot page size (small: a rescan pages while others write). */
  snapshotLimit?: number;
}

/** A device's synced state, as the checks compare it. */
export interface DeviceState {
  name: string;
  rows: Record<string, Record<string, unknown>[]>;
  tombstones: TombstoneRow[];
  pending: number;
  failed: number;
  cursor: number | null;
}

/** What happened on a device, for reports. */
export interface DeviceTally {
  reloads: number;
  offlinePeriods: number;
  rescans: Record<string, number>;
  conflicts: number;
  retries: number;
  errors: Record<string, number>;
}

/** The `ws` WebSocket, in the device's lane of the proxy, and refused while the device is offline. */
function laneWebSocket(lane: string, online: () => boolean) {
  return class LaneWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(online() ? url : 'ws://127.0.0.1:1/offline', protocols, { headers: { [LANE_HEADER]: lane } });
    }
  };
}

export class SimulatedDevice {
  readonly name: string;
  readonly provider: GatewayProvider;
  readonly tally: DeviceTally = { reloads: 0, offlinePeriods: 0, rescans: {}, conflicts: 0, retries: 0, errors: {} };
  private readonly factory = new IDBFactory();
  private readonly options: DeviceOptions;
  private current: SyncEngine | null = null;
  private isOnline = true;

  constructor(options: DeviceOptions) {
    this.options = options;
    this.name = options.name;
    this.provider = new GatewayProvider({
      baseUrl: options.baseUrl,
      getToken: () => options.token,
      pollIntervalMs: options.pollIntervalMs ?? 100,
      fetch: (input, init) => this.fetchThroughLane(input, init),
      WebSocket: laneWebSocket(options.name, () => this.isOnline),
      // Reconnect fast, and go back to the WebSocket soon after falling back to SSE or polling.
      reconnectBackoff: { baseMs: 20, maxMs: 500 },
      upgradeAfterMs: 3000,
      ...(options.snapshotLimit ? { snapshotLimit: options.snapshotLimit } : {}),
    });
  }

  /** The open engine. */
  get engine(): SyncEngine {
    if (!this.current) throw new Error(`device ${this.name} is not open`);
    return this.current;
  }

  get isOpen(): boolean {
    return this.current !== null;
  }

  get online(): boolean {
    return this.isOnline;
  }

  /** Opens the database and engine; with `start`, runs the background loops. */
  async open(start = true): Promise<SyncEngine> {
    const engine = await openWorkspace({
      workspaceId: this.options.workspaceId,
      provider: this.provider,
      schema: APP_SCHEMA,
      syncedTables: SYNCED_TABLES,
      dexieOptions: { indexedDB: this.factory, IDBKeyRange },
      broadcast: false,
      locks: null,
      backoff: { baseMs: 20, maxMs: 400 },
      outboxPollMs: 500,
      ...this.options.engine,
    });
    engine.on('sync.rescan:action', (e) => {
      if (e.phase === 'started') this.tally.rescans[e.reason] = (this.tally.rescans[e.reason] ?? 0) + 1;
    });
    engine.on('sync.conflict:action:detected', () => (this.tally.conflicts += 1));
    engine.on('sync.retry:action', (e) => {
      this.tally.retries += 1;
      this.tally.errors[e.code] = (this.tally.errors[e.code] ?? 0) + 1;
    });
    this.current = engine;
    if (start) engine.start();
    return engine;
  }

  /** Closes the engine and database, as a closed tab would; the data stays. */
  async close(): Promise<void> {
    const engine = this.current;
    this.current = null;
    await engine?.close();
  }

  /** A page reload: close everything, open again, start. */
  async reload(): Promise<void> {
    await this.close();
    this.tally.reloads += 1;
    await this.open();
  }

  /** Offline: every request fails as with no network, and open sockets drop. */
  setOnline(online: boolean): void {
    if (!online && this.isOnline) {
      this.tally.offlinePeriods += 1;
      this.options.proxy?.cutSockets(this.name);
    }
    this.isOnline = online;
  }

  /** The synced tables, tombstone stamps, outbox and cursor. */
  async state(): Promise<DeviceState> {
    const db = this.engine.db;
    const rows: DeviceState['rows'] = {};
    for (const table of SYNCED_TABLE_NAMES) {
      rows[table] = (await db.table(table).toArray()) as Record<string, unknown>[];
    }
    const stats = await this.engine.stats();
    return {
      name: this.name,
      rows,
      tombstones: (await db.table('sync_tombstones').toArray()) as TombstoneRow[],
      pending: stats.pending,
      failed: stats.failed,
      cursor: stats.cursor,
    };
  }

  /** Every request goes through the device's lane of the proxy; pushes and their answers go to the ledger. */
  private async fetchThroughLane(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    if (!this.isOnline) throw new TypeError('fetch failed: the device is offline');
    const headers = new Headers(init?.headers);
    headers.set(LANE_HEADER, this.name);
    const url = String(input instanceof Request ? input.url : input);
    const isPush = url.endsWith('/push') && typeof init?.body === 'string';
    const ops = isPush ? ((JSON.parse(init!.body as string) as { ops: PushOp[] }).ops ?? []) : [];
    if (isPush) this.options.ledger.noteSent(this.name, ops);
    const response = await fetch(input, { ...init, headers });
    if (isPush && response.ok) {
      // Read a copy: only an answer that arrived whole acknowledges anything.
      const body = JSON.parse(await response.clone().text()) as { results?: OpResult[] };
      this.options.ledger.noteAnswered(this.name, ops, body.results ?? []);
    }
    return response;
  }
}
