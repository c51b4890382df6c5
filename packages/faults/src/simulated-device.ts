/**
 * One simulated device: its own fake-indexeddb (so its own database), a
 * `GatewayProvider` whose requests go through the fault proxy in the device's
 * lane, and the real engine on top, in one or more tabs (engines on the
 * same database, with leader election or without). The device can go
 * offline (its requests fail as with no network), reload a tab (close its
 * engine and database and open them again), and report the state the checks
 * compare.
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
  workspaceDatabaseName,
} from '@or3/sync-client';
import WebSocket from 'ws';
import type { AckLedger } from './ack-ledger.js';
import { LANE_HEADER, type FaultProxy } from './fault-proxy.js';
import { InProcessLocks } from './tab-locks.js';

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
  /** Tabs open on the device's database; 1 by default. */
  tabs?: number;
  /** `web-locks`: one tab leads (the default); `none`: every tab runs the loops, the engine's fallback. */
  leaderElection?: 'web-locks' | 'none';
  /** Sync only this project's threads and messages (and every other table). */
  projectId?: string | null;
  /** The provider's deadline for one request (the client's default when absent). */
  requestTimeoutMs?: number;
  /** Rows the device's database holds before sync is first switched on (the app was used offline). */
  preexisting?: Record<string, Record<string, unknown>[]>;
}

/** A device's synced state, as the checks compare it. */
export interface DeviceState {
  name: string;
  /** The project the device syncs alone; null for the whole workspace. */
  projectId?: string | null;
  rows: Record<string, Record<string, unknown>[]>;
  tombstones: TombstoneRow[];
  pending: number;
  failed: number;
  cursor: number | null;
}

/** What happened on a device, for reports. */
export interface DeviceTally {
  reloads: number;
  /** Pre-existing rows adoption queued for push. */
  adoptedRows: number;
  offlinePeriods: number;
  rescans: Record<string, number>;
  conflicts: number;
  retries: number;
  errors: Record<string, number>;
}

/**
 * The `ws` WebSocket, in the device's lane of the proxy, and refused while the device is offline.
 * Pushes sent on it and their answers go to the ledger, as those over HTTP do.
 */
function laneWebSocket(lane: string, online: () => boolean, ledger: AckLedger) {
  return class LaneWebSocket extends WebSocket {
    /** Push frames sent on this socket and not answered yet, by id. */
    private readonly pushes = new Map<string, PushOp[]>();

    constructor(url: string | URL, protocols?: string | string[]) {
      super(online() ? url : 'ws://127.0.0.1:1/offline', protocols, { headers: { [LANE_HEADER]: lane } });
      // Registered before the client's handler: the ledger hears of an answer no later than the engine.
      this.on('message', (data) => {
        const frame = JSON.parse(String(data)) as { type?: string; id?: unknown; results?: OpResult[] };
        if (frame.type !== 'push_result' || typeof frame.id !== 'string') return;
        const ops = this.pushes.get(frame.id);
        if (!ops) return;
        this.pushes.delete(frame.id);
        ledger.noteAnswered(lane, ops, frame.results ?? []);
      });
    }

    override send(data: string): void {
      const frame = JSON.parse(data) as { type?: string; id?: unknown; ops?: PushOp[] };
      if (frame.type === 'push' && typeof frame.id === 'string') {
        this.pushes.set(frame.id, frame.ops ?? []);
        ledger.noteSent(lane, frame.ops ?? []);
      }
      super.send(data);
    }
  };
}

export class SimulatedDevice {
  readonly name: string;
  readonly tally: DeviceTally = { reloads: 0, adoptedRows: 0, offlinePeriods: 0, rescans: {}, conflicts: 0, retries: 0, errors: {} };
  private readonly factory = new IDBFactory();
  private readonly options: DeviceOptions;
  /** The device's open tabs (engines on the one database); null while a tab reloads. */
  private readonly tabs: (SyncEngine | null)[];
  private readonly providers: (GatewayProvider | null)[];
  private readonly locks: InProcessLocks | null;
  private isOnline = true;
  private seeded = false;

  constructor(options: DeviceOptions) {
    this.options = options;
    this.name = options.name;
    const tabs = Math.max(1, options.tabs ?? 1);
    this.tabs = new Array<SyncEngine | null>(tabs).fill(null);
    this.providers = new Array<GatewayProvider | null>(tabs).fill(null);
    this.locks = options.leaderElection === 'none' ? null : new InProcessLocks();
  }

  /** The first tab's engine. */
  get engine(): SyncEngine {
    return this.tab(0);
  }

  /** Tab `index` (modulo the number of tabs). */
  tab(index: number): SyncEngine {
    const engine = this.tabs[index % this.tabs.length];
    if (!engine) throw new Error(`device ${this.name} tab ${index % this.tabs.length} is not open`);
    return engine;
  }

  /** The project the device syncs alone, or null. */
  get projectId(): string | null {
    return this.options.projectId ?? null;
  }

  /** `web-locks` or `none` (every tab leads). */
  get leaderElection(): 'web-locks' | 'none' {
    return this.locks ? 'web-locks' : 'none';
  }

  /** The engine options that differ from the harness defaults, for reports. */
  get engineShape(): Record<string, unknown> {
    const { pushBatchSize, outboxSoftLimit, pullLimit } = this.options.engine ?? {};
    return { pushBatchSize, outboxSoftLimit, pullLimit, snapshotLimit: this.options.snapshotLimit ?? null };
  }

  /** The rows the device started with (none for most). */
  get preexisting(): Record<string, Record<string, unknown>[]> {
    return this.options.preexisting ?? {};
  }

  get tabCount(): number {
    return this.tabs.length;
  }

  /** Opens every tab; with `start`, runs their background loops (the leader's, with leader election). */
  async open(start = true): Promise<SyncEngine> {
    await this.seedPreexisting();
    for (let i = 0; i < this.tabs.length; i++) await this.openTab(i, start);
    return this.engine;
  }

  /** The first time: writes the pre-existing rows with the app's Dexie alone, before any engine attached. */
  private async seedPreexisting(): Promise<void> {
    const rows = this.options.preexisting;
    if (!rows || this.seeded) return;
    this.seeded = true;
    const db = new Dexie(workspaceDatabaseName(this.options.workspaceId), { indexedDB: this.factory, IDBKeyRange });
    db.version(1).stores(APP_SCHEMA);
    await db.open();
    await db.transaction('rw', Object.keys(rows), async () => {
      for (const [table, list] of Object.entries(rows)) await db.table(table).bulkPut(list);
    });
    db.close();
  }

  /** Closes every tab, as a closed browser would; the data stays. */
  async close(): Promise<void> {
    for (let i = 0; i < this.tabs.length; i++) await this.closeTab(i);
  }

  /** Stops every tab's background loops. */
  async stop(): Promise<void> {
    for (const engine of this.tabs) await engine?.stop();
  }

  /** A page reload of one tab: close it, open it again, start it. */
  async reload(index = 0): Promise<void> {
    const i = index % this.tabs.length;
    await this.closeTab(i);
    this.tally.reloads += 1;
    await this.openTab(i, true);
  }

  private async openTab(i: number, start: boolean): Promise<void> {
    const provider = new GatewayProvider({
      baseUrl: this.options.baseUrl,
      getToken: () => this.options.token,
      pollIntervalMs: this.options.pollIntervalMs ?? 100,
      fetch: (input, init) => this.fetchThroughLane(input, init),
      WebSocket: laneWebSocket(this.name, () => this.isOnline, this.options.ledger),
      // Reconnect fast, and go back to the WebSocket soon after falling back to SSE or polling.
      reconnectBackoff: { baseMs: 20, maxMs: 500 },
      upgradeAfterMs: 3000,
      ...(this.options.snapshotLimit ? { snapshotLimit: this.options.snapshotLimit } : {}),
      ...(this.options.requestTimeoutMs ? { requestTimeoutMs: this.options.requestTimeoutMs } : {}),
    });
    const engine = await openWorkspace({
      workspaceId: this.options.workspaceId,
      provider,
      schema: APP_SCHEMA,
      syncedTables: SYNCED_TABLES,
      dexieOptions: { indexedDB: this.factory, IDBKeyRange },
      // Tabs of a device tell each other about captured writes (BroadcastChannel, per device id).
      broadcast: this.tabs.length > 1,
      locks: this.locks,
      projectId: this.options.projectId ?? null,
      backoff: { baseMs: 20, maxMs: 400 },
      outboxPollMs: 500,
      ...this.options.engine,
    });
    engine.on('sync.rescan:action', (e) => {
      if (e.phase === 'started') this.tally.rescans[e.reason] = (this.tally.rescans[e.reason] ?? 0) + 1;
    });
    engine.on('sync.conflict:action:detected', () => (this.tally.conflicts += 1));
    engine.on('sync.adopt:action', (e) => {
      if (e.phase === 'finished') this.tally.adoptedRows += e.queued;
    });
    engine.on('sync.retry:action', (e) => {
      this.tally.retries += 1;
      this.tally.errors[e.code] = (this.tally.errors[e.code] ?? 0) + 1;
    });
    this.tabs[i] = engine;
    this.providers[i] = provider;
    if (start) engine.start();
  }

  private async closeTab(i: number): Promise<void> {
    const engine = this.tabs[i];
    const provider = this.providers[i];
    this.tabs[i] = null;
    this.providers[i] = null;
    await engine?.close();
    provider?.dispose();
  }

  /** Offline: every request fails as with no network, and open sockets drop. */
  setOnline(online: boolean): void {
    if (!online && this.isOnline) {
      this.tally.offlinePeriods += 1;
      this.options.proxy?.cutSockets(this.name);
    }
    this.isOnline = online;
  }

  get online(): boolean {
    return this.isOnline;
  }

  /** The engine's outbox and cursor (of the database, whichever tab leads). */
  async stats(): ReturnType<SyncEngine['stats']> {
    return this.engine.stats();
  }

  /**
   * What the engine says of itself, for a failure report: its status (state,
   * realtime channel, last error) and the sync state rows (cursors, owed
   * rescans, a rescan lease).
   */
  async diagnose(): Promise<string> {
    const { state, channel, lastError, pending, held, failed } = this.engine.status;
    const rows = (await this.engine.db.table('_or3sync_state').toArray()) as { key: string; value: unknown }[];
    const sync = rows.filter((r) => /cursor|rescan|lease|catch/i.test(String(r.key)));
    return JSON.stringify({ state, channel, lastError, pending, held, failed, sync });
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
      projectId: this.projectId,
      rows,
      tombstones: (await db.table('_or3sync_tombstones').toArray()) as TombstoneRow[],
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
