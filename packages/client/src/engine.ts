/**
 * `SyncEngine`: one workspace's Dexie database plus the loops that sync it.
 *
 * `attachSync()` (or `openWorkspace()`) adds the engine's tables to the app's
 * database, installs capture, opens it, and returns the engine. `sync()` runs one push +
 * pull run (rescanning when needed); `start()` keeps running them in the
 * background in the leader tab. Every run leaves a `_or3sync_runs` row and a
 * `sync.stats:action` event.
 *
 * When runs happen (one at a time, the timer, the backoff) is
 * `run-scheduler.ts`'s; the options are in `engine-options.ts`, what opening
 * settles in `engine-open.ts`. This file is near 500 lines on purpose: it is
 * the one object an app holds, and its lifecycle (open, start/stop,
 * pause/resume, close), the run itself (`runOnce`) and the subscription it
 * keeps read best side by side, since each of them changes the others' state.
 */
import type { Dexie } from 'dexie';
import { readAdoption } from './adopt.js';
import { DEFAULT_BACKOFF, sleep } from './backoff.js';
import { createCaptureMiddleware, type CaptureRuntime } from './capture/index.js';
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
import { defaultLockManager, electLeader, openTabChannel, type TabChannel } from './leader.js';
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
import type { AttachSyncOptions, AttachedDatabase, SyncRunResult } from './engine-options.js';
import { openEngineState } from './engine-open.js';
import { releaseRescanLease, rescanDueAfterPush, rescanOwner, rescanScope } from './rescan.js';
import { RunScheduler } from './run-scheduler.js';
import {
  OUTBOX_TABLE,
  RUNS_TABLE,
  STATE_KEYS,
  STATE_TABLE,
  type PendingOpRow,
  type SyncRunRow,
} from './schema.js';

export { workspaceDatabaseName, type AttachSyncOptions, type AttachedDatabase, type SyncRunResult } from './engine-options.js';

/** Longest `stop()` and `close()` wait for the run in flight. */
const STOP_GRACE_MS = 2_000;

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
  private readonly scheduler: RunScheduler<SyncRunResult>;
  private readonly options: AttachSyncOptions;
  private readonly attached: AttachedDatabase;
  private readonly now: () => number;
  private readonly random: () => number;
  private deviceIdValue: string | null = null;
  private clockOffsetMs = 0;
  private clockSamples = 0;
  private paused = false;
  private rescanReason: RescanReason | null = null;
  private errorCount = 0;
  private phase: ErrorEvent['phase'] = 'push';
  private lastPushAt: number | null = null;
  private lastPullAt: number | null = null;
  /** The next run was asked for by the safety pull (see `safetyPullMs`). */
  private safetyPullDue = false;
  /** Runs queued or running: the outbox poll adds none while there are some. */
  private queueFullSignalled = false;
  private capacityWaiters: (() => void)[] = [];
  private started = false;
  private leading = false;
  private closed = false;
  /** The lease owner of the rescan in flight, given back if the tab closes first. */
  private rescanning: string | null = null;
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
    this.scheduler = new RunScheduler(
      {
        runOnce: () => this.runOnce(),
        mayRun: () => this.leading && !this.closed && !this.paused,
        isPaused: () => this.paused,
        isClosed: () => this.closed,
      },
      this.settings.backoff,
      this.random,
    );
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
    this.deviceIdValue = await openEngineState(this.db, this.attached.declaredVersion);
    const state = this.db.table(STATE_TABLE);
    const offset = (await state.get(STATE_KEYS.clockOffset))?.value;
    if (typeof offset === 'number') {
      this.clockOffsetMs = offset;
      this.clockSamples = 1;
    }
    this.runtime.deviceId = this.deviceIdValue;
    await this.refreshPendingEstimate();
    if (this.options.broadcast ?? true) {
      this.tabChannel = openTabChannel(`or3-sync:${this.db.name}:${this.deviceIdValue}`, () => {
        if (this.leading) this.scheduler.schedule(this.options.pushDebounceMs ?? 25);
      });
    }
  }

  /** Adds an event listener; returns a function that removes it. */
  on<K extends SyncEventName>(name: K, listener: SyncEventListener<K>): () => void {
    return this.events.on(name, listener);
  }

  /** One run: rescan when needed, push the outbox, pull new changes. Never throws for sync failures. */
  sync(): Promise<SyncRunResult> {
    return this.scheduler.run();
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
      this.scheduler.schedule(0);
      // Other tabs' writes land in the shared outbox; look for them now and then.
      this.pollTimer = setInterval(() => {
        void this.refreshPendingEstimate()
          .then(() => {
            // A run that is queued or running pushes and pulls anyway (and a long one must not pile up more).
            if (this.scheduler.runsInFlight > 0) return;
            const safetyPullMs = this.options.safetyPullMs ?? 60_000;
            const quiet = safetyPullMs > 0 && Date.now() - (this.lastPullAt ?? 0) >= safetyPullMs;
            if (quiet) this.safetyPullDue = true;
            if (this.runtime.pendingEstimate > 0 || this.rescanReason || quiet) this.scheduler.schedule(0);
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
    this.scheduler.cancel();
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
    this.abort.abort();
    // The run in flight ends at its next step; a provider request that never answers must not
    // hold `stop()` (and a workspace switch) forever: past the grace, the run is left to fail
    // on its own, and what it did not settle stays in the outbox for the next run.
    await Promise.race([this.scheduler.idle(), sleep(STOP_GRACE_MS)]);
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
    this.scheduler.resetBackoff();
    if (this.leading) this.scheduler.schedule(0);
  }

  /** True after a 403/404 or `pause()`, until `resume()`. */
  get isPaused(): boolean {
    return this.paused;
  }

  /** Stops everything and closes the database; the workspace's rows stay on disk. */
  async close(): Promise<void> {
    await this.stop();
    this.closed = true;
    // A rescan still waiting on the network past stop()'s grace would keep its lease until it went
    // stale (RESCAN_LEASE_MS): the next tab (a reload) could not rescan for that long.
    if (this.rescanning) await releaseRescanLease(this.context(), this.rescanning).catch(() => {});
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
    return this.scheduler.exclusive(() => discardFailedOp(this.context(), opId));
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
      this.scheduler.succeeded();
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
    const owner = rescanOwner();
    this.rescanning = owner;
    const outcome = await rescanScope(ctx, reason, owner).finally(() => {
      if (this.rescanning === owner) this.rescanning = null;
    });
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
    const { attempt, delayMs } = this.scheduler.failed(failure.retryAfterMs);
    this.events.emit('sync.retry:action', { phase: this.phase, attempt, delayMs, code: failure.code });
    if (attempt >= this.settings.backoff.errorAfter && attempt % this.settings.backoff.errorAfter === 0) {
      this.events.emit('sync.error:action', {
        phase: this.phase,
        code: failure.code,
        message: failure.message,
        attempts: attempt,
      });
    }
    return failure.code;
  }

  private async recordRun(run: SyncRunRow): Promise<void> {
    const runs = this.db.table<SyncRunRow, number>(RUNS_TABLE);
    const id = await runs.add(run);
    if (id > 1000) await runs.where('id').below(id - 1000).delete();
  }

  private async startSubscription(): Promise<void> {
    const ctx = this.context();
    const cursor = await readCursor(ctx);
    if (cursor === null || this.unsubscribe || !this.leading || this.paused) return;
    this.unsubscribe = this.provider.subscribe(
      ctx.scope,
      cursor,
      (batch) => this.scheduler.exclusive(() => this.applySubscribed(batch)),
      (error) => {
        this.unsubscribe = null;
        if (error.code === 'cursor_expired') this.rescanReason = 'cursor_expired';
        if (error.status === 403 || error.status === 404) {
          this.handleFailure(error);
          return;
        }
        this.scheduler.schedule(0);
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
    if (outcome.gap || outcome.scopeChanged) this.scheduler.schedule(0);
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
    if (this.leading) this.scheduler.schedule(this.options.pushDebounceMs ?? 25);
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
