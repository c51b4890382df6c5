/**
 * `SyncEngine`: one workspace's Dexie database plus the loops that sync it.
 *
 * `attachSync()` (or `openWorkspace()`) adds the engine's tables to the app's
 * database, installs capture, opens it, and returns the engine. `sync()` runs one push +
 * pull run (rescanning when needed); `start()` keeps running them in the
 * background in the leader tab. Every run leaves a `_or3sync_runs` row and a
 * `sync.stats:action` event.
 */
import type { Dexie } from 'dexie';
import { freshAdoption, readAdoption } from './adopt.js';
import { DEFAULT_BACKOFF, backoffDelay, sleep, type BackoffOptions } from './backoff.js';
import { createCaptureMiddleware, type CaptureRuntime } from './capture/index.js';
import { readClockState, writeClockState } from './clock-state.js';
import type { EngineContext, LoopSettings } from './context.js';
import {
  SyncEventBus,
  type ConflictEvent,
  type ErrorEvent,
  type RescanReason,
  type SyncEventListener,
  type SyncEventName,
  type SyncStats,
} from './events.js';
import { newDeviceId } from './ids.js';
import { defaultLockManager, electLeader, openTabChannel, type LockManagerLike, type TabChannel } from './leader.js';
import {
  isSyncProviderError,
  SyncProviderError,
  type ChangesBatch,
  type SyncProvider,
  type Unsubscribe,
} from './provider.js';
import { applyBatch, pullChanges, readCursor, readOwedRescan } from './pull.js';
import { discardFailedOp, pushPending } from './push.js';
import { migrateLegacyTables } from './legacy-layout.js';
import { rescanDueAfterPush, rescanScope } from './rescan.js';
import {
  OUTBOX_TABLE,
  RUNS_TABLE,
  STATE_KEYS,
  STATE_TABLE,
  TOMBSTONES_TABLE,
  type PendingOpRow,
  type SyncRunRow,
  type SyncedTable,
  type SyncedTableOptions,
} from './schema.js';

/** Longest `stop()` and `close()` wait for the run in flight. */
const STOP_GRACE_MS = 2_000;

/** How an app attaches sync to its own Dexie database (see `attachSync`). */
export interface AttachSyncOptions {
  workspaceId: string;
  provider: SyncProvider;
  /** Which of the app's tables sync, and their conventions (keys, deletes, filter, local-only fields, wire names). */
  syncedTables: readonly string[] | Record<string, SyncedTableOptions>;
  /** Sync only this project's threads and messages (and every workspace-wide table). */
  projectId?: string | null;
  /** Unit of `created_at`, `updated_at`, `deleted_at`; seconds by default (OR3 Chat's). */
  timeUnit?: 'seconds' | 'milliseconds';
  /** Above this many pending ops, never-sent ops on one record coalesce. Default 10 000. */
  outboxSoftLimit?: number;
  /** Ops per push request. Default 100. */
  pushBatchSize?: number;
  /** Changes per pull request. Default 500. */
  pullLimit?: number;
  /** Rows per adoption batch: one transaction and one `sync.adopt:action` each. Default 500. */
  adoptBatchSize?: number;
  backoff?: Partial<BackoffOptions>;
  /** Delay after a local write before the leader pushes. Default 25 ms. */
  pushDebounceMs?: number;
  /** How often the leader checks the outbox for other tabs' writes. Default 5 s. */
  outboxPollMs?: number;
  /**
   * After this long without a pull or a streamed change, the leader pulls even while
   * subscribed (checked every `outboxPollMs`); if that pull finds changes the
   * subscription did not deliver, the subscription is reopened. A browser cannot see a
   * WebSocket's pings, so this is how a silently dead connection is noticed. Default 60 s; 0: never.
   */
  safetyPullMs?: number;
  /** Below this `RateLimit-Remaining` the push loop waits `rateLimitDelayMs` between batches. Defaults 5 and 1 s. */
  rateLimitLowWater?: number;
  rateLimitDelayMs?: number;
  /** Web Locks for leader election; `navigator.locks` by default, null for none. */
  locks?: LockManagerLike | null;
  /** Tell other tabs about captured writes over BroadcastChannel. Default true. */
  broadcast?: boolean;
  /** Wall clock in ms. */
  now?: () => number;
  /** Randomness for backoff jitter. */
  random?: () => number;
}

/** What `attachSync` found out about the app's database before opening it. */
export interface AttachedDatabase {
  tables: Map<string, SyncedTable>;
  /** The app's highest declared Dexie version. */
  declaredVersion: number;
  /** Tables of an engine from before the `_or3sync_` prefix, to migrate once open. */
  legacyTables: Record<string, string>;
}

/** What one run did. */
export interface SyncRunResult {
  pushed: number;
  pulled: number;
  conflicts: number;
  /** Error code when the run failed. */
  error: string | null;
}

/** The database name of a workspace (the one `openWorkspace` opens). */
export function workspaceDatabaseName(workspaceId: string): string {
  return `or3-db-${workspaceId}`;
}

/** One workspace's database and sync loops. */
export class SyncEngine {
  /** The workspace's Dexie database: the app's tables plus the engine's. */
  readonly db: Dexie;
  readonly workspaceId: string;
  readonly events = new SyncEventBus();
  /** The backend this engine syncs with (bindings read its realtime state, when it reports one). */
  readonly provider: SyncProvider;
  private readonly runtime: CaptureRuntime;
  private readonly settings: LoopSettings;
  private readonly options: AttachSyncOptions;
  private readonly attached: AttachedDatabase;
  private readonly now: () => number;
  private readonly random: () => number;
  private deviceIdValue: string | null = null;
  private clockOffsetMs = 0;
  private clockSamples = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private paused = false;
  private rescanReason: RescanReason | null = null;
  private failures = 0;
  private errorCount = 0;
  private nextRetryDelayMs = 0;
  private retryNotBefore = 0;
  private phase: ErrorEvent['phase'] = 'push';
  private lastPushAt: number | null = null;
  private lastPullAt: number | null = null;
  /** The next run was asked for by the safety pull (see `safetyPullMs`). */
  private safetyPullDue = false;
  /** Runs queued or running: the outbox poll adds none while there are some. */
  private runsInFlight = 0;
  private queueFullSignalled = false;
  private capacityWaiters: (() => void)[] = [];
  private started = false;
  private leading = false;
  private closed = false;
  private runTimer: ReturnType<typeof setTimeout> | null = null;
  private runDueAt = Infinity;
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  private unsubscribe: Unsubscribe | null = null;
  private resignLeadership: () => void = () => {};
  private tabChannel: TabChannel | null = null;
  private abort = new AbortController();

  /** Use `attachSync` (or `openWorkspace`): it checks the app's schema and adds the engine's stores first. */
  constructor(db: Dexie, options: AttachSyncOptions, attached: AttachedDatabase) {
    this.db = db;
    this.options = options;
    this.attached = attached;
    this.workspaceId = options.workspaceId;
    this.provider = options.provider;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    const tables = attached.tables;
    const seconds = (options.timeUnit ?? 'seconds') === 'seconds';
    this.runtime = {
      tables,
      deviceId: null,
      hlcNow: () => Math.round(this.now() + this.clockOffsetMs),
      appNow: () => (seconds ? Math.floor(this.now() / 1000) : this.now()),
      outboxSoftLimit: options.outboxSoftLimit ?? 10_000,
      pendingEstimate: 0,
      remoteTransactions: new WeakSet(),
      lastClockState: null,
      onCaptured: (added, coalesced) => this.onCaptured(added, coalesced),
    };
    this.settings = {
      pushBatchSize: options.pushBatchSize ?? 100,
      pullLimit: options.pullLimit ?? 500,
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      rateLimitLowWater: options.rateLimitLowWater ?? 5,
      rateLimitDelayMs: options.rateLimitDelayMs ?? 1000,
      adoptBatchSize: options.adoptBatchSize ?? 500,
    };
    this.db.use(createCaptureMiddleware(this.runtime));
  }

  /** This install's device id (stable across reloads). */
  get deviceId(): string {
    if (!this.deviceIdValue) throw new Error('or3-sync: engine is not open');
    return this.deviceIdValue;
  }

  /** True while this tab runs the network loops. */
  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Opens the database, migrates an old engine's tables, loads the device id, and notes
   * an adoption when the database has no sync history yet or the app's version changed.
   * Called by `attachSync`.
   */
  async open(): Promise<void> {
    await this.db.open();
    await migrateLegacyTables(this.db, this.attached.legacyTables);
    const state = this.db.table(STATE_TABLE);
    const tombstones = this.db.table(TOMBSTONES_TABLE);
    this.deviceIdValue = await this.db.transaction('rw', state, tombstones, async () => {
      // A clock state from an older engine does not say which tables hold tombstones: find out once.
      const clockState = await readClockState(this.db);
      if (clockState.tombstoneTables === null) {
        const keys = (await tombstones.toCollection().primaryKeys()) as unknown as [string, string][];
        clockState.tombstoneTables = [...new Set(keys.map(([table]) => table))];
        await writeClockState(this.db, clockState);
      }
      // An app upgrade() may have rewritten rows without capture: adopt them against the server.
      const version = (await state.get(STATE_KEYS.appSchemaVersion))?.value;
      const upgraded = typeof version === 'number' && version !== this.attached.declaredVersion;
      await state.put({ key: STATE_KEYS.appSchemaVersion, value: this.attached.declaredVersion });
      const row = await state.get(STATE_KEYS.deviceId);
      // No device id: no sync history (a new attach, or the engine's tables were lost). Adopt what is there.
      const fresh = typeof row?.value !== 'string';
      if ((fresh || upgraded) && !(await readAdoption({ db: this.db }))) {
        await state.put({ key: STATE_KEYS.adoption, value: freshAdoption() });
      }
      if (!fresh) return row!.value as string;
      const id = newDeviceId();
      await state.put({ key: STATE_KEYS.deviceId, value: id });
      return id;
    });
    const offset = (await state.get(STATE_KEYS.clockOffset))?.value;
    if (typeof offset === 'number') {
      this.clockOffsetMs = offset;
      this.clockSamples = 1;
    }
    this.runtime.deviceId = this.deviceIdValue;
    await this.refreshPendingEstimate();
    if (this.options.broadcast ?? true) {
      this.tabChannel = openTabChannel(`or3-sync:${this.db.name}:${this.deviceIdValue}`, () => {
        if (this.leading) this.scheduleRun(this.options.pushDebounceMs ?? 25);
      });
    }
  }

  /** Adds an event listener; returns a function that removes it. */
  on<K extends SyncEventName>(name: K, listener: SyncEventListener<K>): () => void {
    return this.events.on(name, listener);
  }

  /** One run: rescan when needed, push the outbox, pull new changes. Never throws for sync failures. */
  sync(): Promise<SyncRunResult> {
    this.runsInFlight += 1;
    return this.exclusive(() => this.runOnce()).finally(() => {
      this.runsInFlight -= 1;
    });
  }

  /** Replaces the local state with a fresh snapshot, keeping pending writes, then pulls. */
  rescan(): Promise<SyncRunResult> {
    this.rescanReason = 'on_demand';
    return this.sync();
  }

  /** Runs the loops in the background (in the leader tab only). */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    const locks = this.options.locks === undefined ? defaultLockManager() : this.options.locks;
    this.resignLeadership = electLeader(locks, `or3-sync:${this.db.name}`, () => {
      if (this.closed || !this.started) return;
      this.leading = true;
      this.emitState();
      this.scheduleRun(0);
      // Other tabs' writes land in the shared outbox; look for them now and then.
      this.pollTimer = setInterval(() => {
        void this.refreshPendingEstimate()
          .then(() => {
            // A run that is queued or running pushes and pulls anyway (and a long one must not pile up more).
            if (this.runsInFlight > 0) return;
            const safetyPullMs = this.options.safetyPullMs ?? 60_000;
            const quiet = safetyPullMs > 0 && Date.now() - (this.lastPullAt ?? 0) >= safetyPullMs;
            if (quiet) this.safetyPullDue = true;
            if (this.runtime.pendingEstimate > 0 || this.rescanReason || quiet) this.scheduleRun(0);
          })
          .catch(() => {});
      }, this.options.outboxPollMs ?? 5000);
    });
  }

  /** Stops the background loops; local writes keep landing in the outbox. */
  async stop(): Promise<void> {
    const wasLeading = this.leading;
    this.started = false;
    this.leading = false;
    if (wasLeading) this.emitState();
    this.resignLeadership();
    this.stopSubscription();
    if (this.runTimer) clearTimeout(this.runTimer);
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.runTimer = null;
    this.runDueAt = Infinity;
    this.pollTimer = null;
    this.abort.abort();
    // The run in flight ends at its next step; a provider request that never answers must not
    // hold `stop()` (and a workspace switch) forever: past the grace, the run is left to fail
    // on its own, and what it did not settle stays in the outbox for the next run.
    await Promise.race([this.queue.catch(() => {}), sleep(STOP_GRACE_MS)]);
    this.abort = new AbortController();
  }

  /** Pauses the loops (as after a 403/404); `resume()` restarts them. */
  pause(): void {
    const changed = !this.paused;
    this.paused = true;
    this.stopSubscription();
    if (changed) this.emitState();
  }

  /** Lifts a pause; the leader runs at once. */
  resume(): void {
    const changed = this.paused;
    this.paused = false;
    if (changed) this.emitState();
    this.failures = 0;
    this.retryNotBefore = 0;
    if (this.leading) this.scheduleRun(0);
  }

  /** True after a 403/404 or `pause()`, until `resume()`. */
  get isPaused(): boolean {
    return this.paused;
  }

  /** Stops everything and closes the database; the workspace's rows stay on disk. */
  async close(): Promise<void> {
    await this.stop();
    this.closed = true;
    this.tabChannel?.close();
    for (const resolve of this.capacityWaiters.splice(0)) resolve();
    this.db.close();
  }

  /** Resolves when the outbox is below its soft limit: backpressure for bulk writes. */
  waitForCapacity(): Promise<void> {
    if (this.runtime.pendingEstimate < this.runtime.outboxSoftLimit) return Promise.resolve();
    return new Promise((resolve) => this.capacityWaiters.push(resolve));
  }

  /** Ops waiting to be pushed (not counting failed ones). */
  pendingCount(): Promise<number> {
    return this.db.table(OUTBOX_TABLE).where('status').equals('pending').count();
  }

  /** Ops the server rejected for good; kept until the app discards them. */
  failedOps(): Promise<PendingOpRow[]> {
    return this.db.table<PendingOpRow>(OUTBOX_TABLE).where('status').equals('failed').toArray();
  }

  /** Drops a failed op and restores its record from the server's copy. */
  discardFailedOp(opId: string): Promise<void> {
    return this.exclusive(() => discardFailedOp(this.context(), opId));
  }

  /** The numbers `sync.stats:action` carries. */
  async stats(): Promise<SyncStats> {
    const ops = this.db.table(OUTBOX_TABLE);
    const [pending, failed, cursor] = await Promise.all([
      ops.where('status').equals('pending').count(),
      ops.where('status').equals('failed').count(),
      readCursor(this.context()),
    ]);
    return {
      workspaceId: this.workspaceId,
      pending,
      failed,
      cursor,
      lastPushAt: this.lastPushAt,
      lastPullAt: this.lastPullAt,
      errors: this.errorCount,
      paused: this.paused,
    };
  }

  /** `sync.state:action`: bindings follow leadership and pauses, which no run reports. */
  private emitState(): void {
    this.events.emit('sync.state:action', { leader: this.leading, paused: this.paused });
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task, task);
    this.queue = result.catch(() => {});
    return result;
  }

  private context(): EngineContext {
    return {
      db: this.db,
      runtime: this.runtime,
      provider: this.provider,
      scope: { workspaceId: this.workspaceId, projectId: this.options.projectId ?? null, deviceId: this.deviceId },
      cursorKey: STATE_KEYS.cursor(this.options.projectId ?? '*'),
      events: this.events,
      settings: this.settings,
      observeServerTime: (serverTime) => this.observeServerTime(serverTime),
      refreshPendingEstimate: () => this.refreshPendingEstimate(),
    };
  }

  private async runOnce(): Promise<SyncRunResult> {
    const run: SyncRunRow = { started_at: Date.now(), finished_at: null, pushed: 0, pulled: 0, conflicts: 0, error: null };
    const conflicts: ConflictEvent[] = [];
    const ctx = this.context();
    const safetyPull = this.safetyPullDue;
    this.safetyPullDue = false;
    let reopen = false;
    try {
      if (this.paused) throw new SyncProviderError({ code: 'paused', message: 'sync is paused', status: -1 });
      let cursor = await readCursor(ctx);
      const owed = (await readOwedRescan(ctx)) ?? ((await readAdoption(ctx)) ? 'adoption' : null);
      if (cursor === null || this.rescanReason || owed) {
        const reason = cursor === null ? 'fresh_device' : (this.rescanReason ?? owed!);
        cursor = await this.runRescan(ctx, reason, run, conflicts);
      }
      this.phase = 'push';
      // A failed push does not keep this run from pulling; its error still fails the run.
      let pushError: unknown = null;
      try {
        const pushed = await pushPending(ctx, this.abort.signal);
        run.pushed = pushed.pushed;
        conflicts.push(...pushed.conflicts);
        if (pushed.pushed + pushed.failed > 0) this.lastPushAt = Date.now();
      } catch (error) {
        if (isSyncProviderError(error) && (error.status === 403 || error.status === 404 || error.status === 0)) throw error;
        pushError = error;
      }
      this.phase = 'pull';
      let pulled;
      try {
        pulled = await pullChanges(ctx, cursor);
      } catch (error) {
        if (!isSyncProviderError(error) || error.code !== 'cursor_expired') throw error;
        cursor = await this.runRescan(ctx, 'cursor_expired', run, conflicts);
        pulled = await pullChanges(ctx, cursor);
      }
      if (pulled.scopeChanged || (await rescanDueAfterPush(ctx))) {
        cursor = await this.runRescan(ctx, 'scope_change', run, conflicts);
        pulled = await pullChanges(ctx, cursor);
      }
      run.pulled += pulled.pulled;
      conflicts.push(...pulled.conflicts);
      this.lastPullAt = Date.now();
      // Changes of others the subscription stayed silent about for a whole safety interval: its
      // connection is likely dead without knowing it. Reopen it (below, from the cursor just stored).
      if (safetyPull && pulled.applied > 0 && this.unsubscribe) {
        this.stopSubscription();
        reopen = true;
      }
      if (pushError) {
        this.phase = 'push';
        throw pushError;
      }
      this.failures = 0;
      this.nextRetryDelayMs = 0;
      this.retryNotBefore = 0;
    } catch (error) {
      run.error = this.handleFailure(error);
    } finally {
      run.finished_at = Date.now();
      run.conflicts = conflicts.length;
      await this.recordRun(run);
      for (const conflict of conflicts) this.events.emit('sync.conflict:action:detected', conflict);
      this.events.emit('sync.stats:action', await this.stats());
    }
    if (this.leading && !this.unsubscribe && (!run.error || reopen)) await this.startSubscription();
    const { pushed, pulled, error } = run;
    return { pushed, pulled, conflicts: run.conflicts, error };
  }

  private async runRescan(
    ctx: EngineContext,
    reason: RescanReason,
    run: SyncRunRow,
    conflicts: ConflictEvent[],
  ): Promise<number> {
    this.phase = 'snapshot';
    this.stopSubscription();
    const outcome = await rescanScope(ctx, reason);
    this.rescanReason = null;
    run.pulled += outcome.items;
    conflicts.push(...outcome.conflicts);
    return outcome.snapshotVersion;
  }

  /** Classifies a failed run: pause on 403/404, back off on the rest. Returns the error code. */
  private handleFailure(error: unknown): string {
    const failure = isSyncProviderError(error)
      ? error
      : new SyncProviderError({ code: 'internal', message: String((error as Error)?.message ?? error), status: 0, cause: error });
    if (failure.code === 'paused') return failure.code;
    this.errorCount += 1;
    if (failure.status === 403 || failure.status === 404) {
      this.pause();
      this.events.emit('sync.error:action', { phase: this.phase, code: failure.code, message: failure.message, paused: true });
      return failure.code;
    }
    this.failures += 1;
    this.nextRetryDelayMs = backoffDelay(this.failures, this.settings.backoff, this.random, failure.retryAfterMs);
    this.retryNotBefore = Date.now() + this.nextRetryDelayMs;
    this.events.emit('sync.retry:action', {
      phase: this.phase,
      attempt: this.failures,
      delayMs: this.nextRetryDelayMs,
      code: failure.code,
    });
    if (this.failures >= this.settings.backoff.errorAfter && this.failures % this.settings.backoff.errorAfter === 0) {
      this.events.emit('sync.error:action', {
        phase: this.phase,
        code: failure.code,
        message: failure.message,
        attempts: this.failures,
      });
    }
    return failure.code;
  }

  private async recordRun(run: SyncRunRow): Promise<void> {
    const runs = this.db.table<SyncRunRow, number>(RUNS_TABLE);
    const id = await runs.add(run);
    if (id > 1000) await runs.where('id').below(id - 1000).delete();
  }

  private scheduleRun(delayMs: number): void {
    if (!this.leading || this.closed || this.paused) return;
    // Nothing runs before the current backoff is over, whatever asked for the run.
    const due = Math.max(Date.now() + delayMs, this.retryNotBefore);
    delayMs = due - Date.now();
    if (this.runTimer && this.runDueAt <= due) return;
    if (this.runTimer) clearTimeout(this.runTimer);
    this.runDueAt = due;
    this.runTimer = setTimeout(() => {
      this.runTimer = null;
      this.runDueAt = Infinity;
      this.sync().then(
        (result) => {
          if (result.error && result.error !== 'paused' && !this.paused) this.scheduleRun(this.nextRetryDelayMs);
        },
        (error: unknown) => {
          // Only a closed database gets here (recording the run failed): nothing left to run.
          if (!this.closed) console.error('or3-sync: sync run failed', error);
        },
      );
    }, delayMs);
  }

  private async startSubscription(): Promise<void> {
    const ctx = this.context();
    const cursor = await readCursor(ctx);
    if (cursor === null || this.unsubscribe || !this.leading || this.paused) return;
    this.unsubscribe = this.provider.subscribe(
      ctx.scope,
      cursor,
      (batch) => this.exclusive(() => this.applySubscribed(batch)),
      (error) => {
        this.unsubscribe = null;
        if (error.code === 'cursor_expired') this.rescanReason = 'cursor_expired';
        if (error.status === 403 || error.status === 404) {
          this.handleFailure(error);
          return;
        }
        this.scheduleRun(0);
      },
      // Reconnects resume from what this database holds, not from what the provider last saw.
      { appliedCursor: () => readCursor(ctx) },
    );
  }

  private async applySubscribed(batch: ChangesBatch): Promise<void> {
    const outcome = await applyBatch(this.context(), batch);
    this.lastPullAt = Date.now();
    for (const conflict of outcome.conflicts) this.events.emit('sync.conflict:action:detected', conflict);
    if (outcome.scopeChanged) this.rescanReason = 'scope_change';
    if (outcome.gap || outcome.scopeChanged) this.scheduleRun(0);
  }

  private stopSubscription(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  private onCaptured(added: number, coalesced: number): void {
    this.runtime.pendingEstimate += added;
    const limit = this.runtime.outboxSoftLimit;
    if ((coalesced > 0 || this.runtime.pendingEstimate > limit) && !this.queueFullSignalled) {
      this.queueFullSignalled = true;
      this.events.emit('sync.queue:action:full', { pending: this.runtime.pendingEstimate, limit });
    }
    this.tabChannel?.notifyCaptured();
    if (this.leading) this.scheduleRun(this.options.pushDebounceMs ?? 25);
  }

  private async refreshPendingEstimate(): Promise<void> {
    if (!this.db.isOpen()) return;
    this.runtime.pendingEstimate = await this.db.table(OUTBOX_TABLE).where('status').equals('pending').count();
    if (this.runtime.pendingEstimate < this.runtime.outboxSoftLimit) {
      this.queueFullSignalled = false;
      for (const resolve of this.capacityWaiters.splice(0)) resolve();
    }
  }

  private observeServerTime(serverTime: number): void {
    const sample = serverTime - this.now();
    this.clockOffsetMs = this.clockSamples === 0 ? sample : this.clockOffsetMs + (sample - this.clockOffsetMs) * 0.3;
    this.clockSamples += 1;
    void this.db
      .table(STATE_TABLE)
      .put({ key: STATE_KEYS.clockOffset, value: Math.round(this.clockOffsetMs) })
      .catch(() => {});
  }
}
