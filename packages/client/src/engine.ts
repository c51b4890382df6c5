/**
 * `SyncEngine`: one workspace's Dexie database plus the loops that sync it.
 *
 * `attachSync()` (or `openWorkspace()`) adds the engine's tables to the app's
 * database, installs capture, opens it, and returns the engine. `sync()` runs one push +
 * pull run (rescanning when needed); `start()` keeps running them in the
 * background in the leader tab. Every run leaves a `_or3sync_runs` row and a
 * `sync.stats:action` event.
 *
 * This file holds the lifecycle (open, start/stop, pause/resume, close) and
 * the wiring: the run itself is `run.ts` (its end is classified in
 * `run-end.ts`), when runs happen is `run-scheduler.ts`'s, the outbox is
 * `outbox/`'s, the options are in `engine-options.ts`, what opening settles in
 * `engine-open.ts`. The engine's state is three typed values: its `Lifecycle`,
 * its `PauseReason` (or null), and the `RunState` runs share.
 */
import type { Dexie } from 'dexie';
import { DEFAULT_BACKOFF, sleep } from './backoff.js';
import { createCaptureMiddleware, type CaptureRuntime } from './capture/index.js';
import type { EngineContext, LoopSettings } from './context.js';
import {
  SyncEventBus,
  type PauseReason,
  type SyncEventListener,
  type SyncEventName,
  type SyncStats,
  type WorkspaceAccess,
} from './events.js';
import { defaultLockManager, electLeader, openTabChannel, type TabChannel } from './leader.js';
import { outbox, type PendingOpRow } from './outbox/index.js';
import { removeUserData, type RemovedUserData, type SignOutOptions } from './people/sign-out.js';
import { takeOwnership } from './people/wipe.js';
import { ownerChanged } from './people/ownership.js';
import type { ChangesBatch, SyncProvider, Unsubscribe } from './provider.js';
import { applyBatch, readCursor } from './pull.js';
import { discardFailedOp, restoreServerCopy, retryFailedOps } from './recovery.js';
import { ConfigWatch } from './server-config.js';
import { StatusTracker, type EngineStatus } from './engine-status.js';
import { migrateLegacyTables } from './legacy-layout.js';
import type { AttachSyncOptions, AttachedDatabase, SyncRunResult } from './engine-options.js';
import { openEngineState } from './engine-open.js';
import { releaseRescanLease } from './rescan.js';
import { classifyFailure } from './run-end.js';
import { reportFailure, runSync, type RunHost, type RunOutcome, type RunState } from './run.js';
import { RunScheduler, type RunPurpose } from './run-scheduler.js';
import { STATE_KEYS, STATE_TABLE } from './schema.js';

export { workspaceDatabaseName, type AttachSyncOptions, type AttachedDatabase, type SyncRunResult } from './engine-options.js';

/** Where the engine is in its life. */
type Lifecycle =
  /** Open, loops not running (before `start()`, after `stop()`). */
  | { kind: 'stopped' }
  /** Started; another tab leads (or the lock is not granted yet). */
  | { kind: 'following' }
  /** Started and leading: runs in the background, polls the shared outbox. */
  | { kind: 'leading'; poll: ReturnType<typeof setInterval> }
  | { kind: 'closed' };

/** Longest `stop()` and `close()` wait for the run in flight. */
const STOP_GRACE_MS = 2_000;

/** One workspace's database and sync loops; `DB` is the app's Dexie (sub)class, so `engine.db` keeps its tables' types. */
export class SyncEngine<DB extends Dexie = Dexie> {
  /** The workspace's Dexie database: the app's tables plus the engine's. */
  readonly db: DB;
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
  private readonly runHost: RunHost;
  private deviceIdValue: string | null = null;
  private clock = { offsetMs: 0, samples: 0 };
  private life: Lifecycle = { kind: 'stopped' };
  private pauseReasonValue: PauseReason | null = null;
  private readonly runState: RunState = {
    rescanDue: null,
    safetyPullDue: false,
    errorCount: 0,
    lastPushAt: null,
    lastPullAt: null,
    rescanLease: null,
    access: 'read_write',
  };
  private subscription: Unsubscribe | null = null;
  /** Backpressure: `sync.queue:action:full` fired and not yet relieved; bulk writers waiting for room. */
  private queue = { fullSignalled: false, waiters: [] as (() => void)[] };
  private resignLeadership: () => void = () => {};
  private tabChannel: TabChannel | null = null;
  private abort = new AbortController();
  private readonly tracker: StatusTracker;
  private readonly config: ConfigWatch;
  private stopRealtimeWatch: () => void = () => {};

  /** Use `attachSync` (or `openWorkspace`): it checks the app's schema and adds the engine's stores first. */
  constructor(db: DB, options: AttachSyncOptions, attached: AttachedDatabase) {
    this.db = db;
    this.options = options;
    this.attached = attached;
    this.workspaceId = options.workspaceId;
    this.provider = options.provider;
    const now = (this.now = options.now ?? Date.now);
    const seconds = (options.timeUnit ?? 'seconds') === 'seconds';
    this.runtime = {
      tables: attached.tables,
      deviceId: null,
      userId: options.userId ?? null,
      now,
      hlcNow: () => Math.round(now() + this.clock.offsetMs),
      appNow: () => (seconds ? Math.floor(now() / 1000) : now()),
      outboxSoftLimit: options.outboxSoftLimit ?? 10_000,
      pendingEstimate: 0,
      remoteTransactions: new WeakSet(),
      lastClockState: null,
      onCaptured: (added, coalesced) => this.onCaptured(added, coalesced),
    };
    this.settings = {
      pushBatchSize: options.pushBatchSize ?? 100,
      backlogBatches: options.pushBatchSize === undefined,
      pullLimit: options.pullLimit ?? 500,
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      rateLimitLowWater: options.rateLimitLowWater ?? 5,
      rateLimitDelayMs: options.rateLimitDelayMs ?? 1000,
      adoptBatchSize: options.adoptBatchSize ?? 500,
    };
    this.scheduler = new RunScheduler(
      {
        runOnce: (purpose) => this.runOnce(purpose),
        mayRun: () => this.life.kind === 'leading' && !this.isPaused,
        isPaused: () => this.isPaused,
        isClosed: () => this.life.kind === 'closed',
        hasQueuedWrites: () => this.runtime.pendingEstimate > 0,
      },
      this.settings.backoff,
      options.random ?? Math.random,
      now,
    );
    this.runHost = {
      state: this.runState,
      backoff: this.settings.backoff,
      scheduler: this.scheduler,
      context: () => this.context(),
      now,
      signal: () => this.abort.signal,
      isPaused: () => this.isPaused,
      refuse: (reason) => this.pauseFor(reason),
      userId: options.userId ?? null,
      isSubscribed: () => this.subscription !== null,
      stopSubscription: () => this.stopSubscription(),
      stats: () => this.stats(),
      noteRun: (error) => this.tracker.noteRun(error),
    };
    this.db.use(createCaptureMiddleware(this.runtime));
    this.tracker = new StatusTracker({
      db,
      pause: () => this.pauseReasonValue,
      access: () => this.runState.access,
      pending: () => this.runtime.pendingEstimate,
      lastPullAt: () => this.runState.lastPullAt,
      now,
      freshMs: options.statusFreshMs ?? (options.safetyPullMs ?? 60_000) + (options.outboxPollMs ?? 5000),
      emit: (status) => this.events.emit('sync.status:action', status),
    });
    this.events.on('sync.error:action', (event) => this.tracker.noteError(event));
    this.config = new ConfigWatch(options.heldRetryMs ?? 60_000, now);
  }

  /** Where sync stands, by the one status machine (client README, "Status"); `sync.status:action` announces each change. */
  get status(): EngineStatus {
    return this.tracker.status;
  }

  /** This install's device id (stable across reloads). */
  get deviceId(): string {
    if (!this.deviceIdValue) throw new Error('or3-sync: engine is not open');
    return this.deviceIdValue;
  }

  /** True while this tab runs the network loops. */
  get isLeader(): boolean {
    return this.life.kind === 'leading';
  }

  /**
   * Opens the database, migrates an old engine's tables, loads the device id, and notes
   * an adoption when the database has no sync history yet or the app's version changed.
   * Called by `attachSync`.
   */
  async open(): Promise<void> {
    await this.db.open();
    await migrateLegacyTables(this.db, this.attached.legacyTables);
    this.deviceIdValue = await openEngineState(this.db, this.attached.declaredVersion, [...this.attached.tables.keys()]);
    // Before the app can read a row: another user's data is wiped and held, this user's held writes come back.
    if (this.runtime.userId !== null) await takeOwnership(this.db, this.runtime, this.runtime.userId);
    const offset = (await this.db.table(STATE_TABLE).get(STATE_KEYS.clockOffset))?.value;
    if (typeof offset === 'number') this.clock = { offsetMs: offset, samples: 1 };
    this.runtime.deviceId = this.deviceIdValue;
    await this.refreshPendingEstimate();
    await this.tracker.recount();
    if (this.options.broadcast ?? true) {
      this.tabChannel = openTabChannel(`or3-sync:${this.db.name}:${this.deviceIdValue}`, {
        captured: () => {
          if (this.isLeader) this.scheduler.pushSoon(this.options.pushDebounceMs ?? 0);
        },
        // Another user opened the database in another tab (wiping this user's data there): stop at once.
        owner: (owner) => {
          const userId = this.runtime.userId;
          if (userId === null || owner === userId) return;
          this.pauseFor({ kind: 'refused', phase: 'push', ...ownerChanged(userId, owner) });
        },
      });
      if (this.runtime.userId !== null) this.tabChannel.announceOwner(this.runtime.userId);
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
    this.runState.rescanDue = 'on_demand';
    return this.sync();
  }

  /** Runs the loops in the background (in the leader tab only). */
  start(): void {
    if (this.life.kind !== 'stopped') return;
    this.life = { kind: 'following' };
    const locks = this.options.locks === undefined ? defaultLockManager() : this.options.locks;
    this.resignLeadership = electLeader(locks, `or3-sync:${this.db.name}`, () => {
      if (this.life.kind !== 'following') return;
      // Other tabs' writes land in the shared outbox; look for them now and then.
      this.life = { kind: 'leading', poll: setInterval(() => this.poll(), this.options.outboxPollMs ?? 5000) };
      this.emitState();
      this.scheduler.schedule(0);
    });
  }

  /** Stops the background loops; local writes keep landing in the outbox. */
  async stop(): Promise<void> {
    const life = this.life;
    if (life.kind === 'leading') clearInterval(life.poll);
    if (life.kind !== 'closed') this.life = { kind: 'stopped' };
    if (life.kind === 'leading') this.emitState();
    this.resignLeadership();
    this.stopSubscription();
    this.scheduler.cancel();
    this.abort.abort();
    // The run in flight ends at its next step; a provider request that never answers must not
    // hold `stop()` (and a workspace switch) forever: past the grace, the run is left to fail
    // on its own, and what it did not settle stays in the outbox for the next run.
    await Promise.race([this.scheduler.idle(), sleep(STOP_GRACE_MS)]);
    this.abort = new AbortController();
  }

  /** Pauses the loops (the app's pause; a 403/404 pauses them too); `resume()` restarts them. */
  pause(): void {
    this.pauseFor({ kind: 'app' });
  }

  /** Lifts a pause; the leader runs at once (after a refusal, the server is asked again). */
  resume(): void {
    const changed = this.isPaused;
    this.pauseReasonValue = null;
    if (this.runState.access === 'revoked') this.runState.access = 'read_write';
    if (changed) this.emitState();
    this.scheduler.resetBackoff();
    if (this.isLeader) this.scheduler.schedule(0);
  }

  /** True after a 403/404 or `pause()`, until `resume()`. */
  get isPaused(): boolean {
    return this.pauseReasonValue !== null;
  }

  /** Why the loops are paused (the app, or the server's refusal with its code); null while not paused. */
  get pauseReason(): PauseReason | null {
    return this.pauseReasonValue;
  }

  /** What the server lets the user do in the workspace, as far as the engine has seen. */
  get access(): WorkspaceAccess {
    return this.runState.access;
  }

  /** Ops held back, never pushed: other users' writes kept for them (never shown), writes the server does not sync yet; each with `owner` and its reason in `error`. */
  heldOps(): Promise<PendingOpRow[]> {
    return outbox.heldOps(this.db);
  }

  /**
   * Signs the user out: stops the loops, pushes what is pending within `timeoutMs` (5 s), removes
   * the user's data (the database, when nobody else's writes wait in it), closes. Unsynced writes
   * refuse it (`UnsyncedWritesError`; the engine stays open, `start()` it again) unless `unsynced`
   * is `hold` (kept for the user's next sign-in) or `discard`. Resolves with what stayed.
   */
  signOut(options: SignOutOptions = {}): Promise<RemovedUserData> {
    return this.leave(options, options.timeoutMs ?? 5_000);
  }

  /** As `signOut`, without trying to push: for a workspace the server refuses (`access` revoked). */
  forgetWorkspace(options: Pick<SignOutOptions, 'unsynced'> = {}): Promise<RemovedUserData> {
    return this.leave(options, 0);
  }

  private async leave(options: SignOutOptions, pushForMs: number): Promise<RemovedUserData> {
    await this.stop();
    // One bounded try to push; a push still going is aborted at its next batch, and the removal waits for it.
    if (pushForMs > 0 && !this.isPaused && (await this.pendingCount()) > 0) await Promise.race([this.sync(), sleep(pushForMs)]).then(() => this.stop());
    const left = await this.scheduler.exclusive(() => removeUserData(this.db, this.runtime, this.runtime.userId, options.unsynced ?? 'refuse'));
    await this.close();
    return left;
  }

  /** Stops everything and closes the database; the workspace's rows stay on disk. */
  async close(): Promise<void> {
    await this.stop();
    this.life = { kind: 'closed' };
    // A rescan still waiting on the network past stop()'s grace would keep its lease until it went
    // stale (RESCAN_LEASE_MS): the next tab (a reload) could not rescan for that long.
    const lease = this.runState.rescanLease;
    if (lease) await releaseRescanLease(this.context(), lease).catch(() => {});
    this.tabChannel?.close();
    for (const resolve of this.queue.waiters.splice(0)) resolve();
    this.db.close();
  }

  /** Resolves when the outbox is below its soft limit: backpressure for bulk writes. */
  waitForCapacity(): Promise<void> {
    if (this.runtime.pendingEstimate < this.runtime.outboxSoftLimit) return Promise.resolve();
    return new Promise((resolve) => this.queue.waiters.push(resolve));
  }

  /** Ops waiting to be pushed (not counting failed ones). */
  pendingCount(): Promise<number> {
    return outbox.countQueued(this.db);
  }

  /** Ops the server rejected for good; kept until the app discards them. */
  failedOps(): Promise<PendingOpRow[]> {
    return outbox.failedOps(this.db);
  }

  /** Stops pushing a failed op; local data stays as it is (the record is local-only until written again). */
  discardFailedOp(opId: string): Promise<void> {
    return this.recover(() => discardFailedOp(this.context(), opId));
  }

  /** Drops a failed op and puts the server's copy of its record back (removing a row the server never had). */
  restoreServerCopy(opId: string): Promise<void> {
    return this.recover(() => restoreServerCopy(this.context(), opId));
  }

  /** Pushes a failed op again (its cause fixed). */
  async retryFailedOp(opId: string): Promise<void> {
    await this.recover(() => retryFailedOps(this.context(), opId));
  }

  /** Pushes every failed op again; returns how many. */
  retryFailedOps(): Promise<number> {
    return this.recover(() => retryFailedOps(this.context(), null));
  }

  private async recover<T>(action: () => Promise<T>): Promise<T> {
    const result = await this.scheduler.exclusive(action);
    await this.tracker.recount();
    if (this.isLeader) this.scheduler.schedule(0);
    return result;
  }

  /** The numbers `sync.stats:action` carries. */
  async stats(): Promise<SyncStats> {
    const [pending, held, failed, cursor] = await Promise.all([
      outbox.countQueued(this.db),
      outbox.heldForServer(this.db).then((ops) => ops.length),
      outbox.countFailed(this.db),
      readCursor(this.context()),
    ]);
    const { lastPushAt, lastPullAt, errorCount, access } = this.runState;
    return { workspaceId: this.workspaceId, pending, held, failed, cursor, lastPushAt, lastPullAt, errors: errorCount, paused: this.isPaused, access };
  }

  /** `sync.state:action`: bindings follow leadership and pauses, which no run reports. */
  private emitState(): void {
    this.events.emit('sync.state:action', { leader: this.isLeader, paused: this.isPaused, pauseReason: this.pauseReasonValue });
    this.tracker.announce();
  }

  private pauseFor(reason: PauseReason): void {
    const changed = !this.isPaused;
    // The first reason stands: a refusal while the app has paused does not rewrite why.
    this.pauseReasonValue ??= reason;
    this.stopSubscription();
    if (changed) this.emitState();
    // The server refused the workspace (not a token of another user): access is revoked.
    if (reason.kind === 'refused' && reason.code !== 'user_mismatch' && this.runState.access !== 'revoked') {
      this.runState.access = 'revoked';
      this.events.emit('sync.access:action:revoked', { workspaceId: this.workspaceId, code: reason.code, message: reason.message });
    }
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
      refreshPendingEstimate: (queued) => this.refreshPendingEstimate(queued),
    };
  }

  private async runOnce(purpose: RunPurpose): Promise<RunOutcome> {
    if (!this.isPaused) await this.config.beforeRun(this.context());
    const outcome = await runSync(this.runHost, purpose);
    if (this.isLeader && !this.subscription && (outcome.end.kind === 'synced' || outcome.reopenSubscription)) {
      await this.startSubscription();
    }
    return outcome;
  }

  /** The leader's poll: other tabs' writes, a rescan asked for, and the safety pull. */
  private poll(): void {
    void this.refreshPendingEstimate()
      .then(() => {
        // A run that is queued or running pushes and pulls anyway (and a long one must not pile up more).
        if (this.scheduler.runsInFlight > 0) return;
        const safetyPullMs = this.options.safetyPullMs ?? 60_000;
        const quiet = safetyPullMs > 0 && this.now() - (this.runState.lastPullAt ?? 0) >= safetyPullMs;
        if (quiet) this.runState.safetyPullDue = true;
        const heldDue = this.tracker.status.held > 0 && this.config.retryDue;
        if (this.runtime.pendingEstimate > 0 || this.runState.rescanDue || quiet || heldDue) this.scheduler.schedule(0);
        this.tracker.announce();
      })
      .catch(() => {});
  }

  private async startSubscription(): Promise<void> {
    const ctx = this.context();
    const cursor = await readCursor(ctx);
    if (cursor === null || this.subscription || !this.isLeader || this.isPaused) return;
    this.subscription = this.provider.subscribe(
      ctx.scope,
      cursor,
      (batch) => this.scheduler.exclusive(() => this.applySubscribed(batch)),
      (error) => {
        this.stopSubscription();
        if (error.code === 'cursor_expired') this.runState.rescanDue = 'cursor_expired';
        const failure = classifyFailure(error);
        if (failure.kind === 'refused') reportFailure(this.runHost, 'subscribe', failure);
        else this.scheduler.schedule(0);
      },
      // Reconnects resume from what this database holds, not from what the provider last saw.
      { appliedCursor: () => readCursor(ctx) },
    );
    // A reconnect may follow a server fix: held ops go again.
    this.stopRealtimeWatch = this.tracker.follow(this.provider, this.workspaceId, () => {
      this.config.reconnected();
      this.scheduler.schedule(0);
    });
  }

  private async applySubscribed(batch: ChangesBatch): Promise<void> {
    const outcome = await applyBatch(this.context(), batch);
    this.runState.lastPullAt = this.now();
    for (const conflict of outcome.conflicts) this.events.emit('sync.conflict:action:detected', conflict);
    if (outcome.scopeChanged) this.runState.rescanDue = 'scope_change';
    if (outcome.gap || outcome.scopeChanged) this.scheduler.schedule(0);
  }

  private stopSubscription(): void {
    this.subscription?.();
    this.subscription = null;
    this.stopRealtimeWatch();
    this.stopRealtimeWatch = () => {};
    this.tracker.closeChannel();
  }

  private onCaptured(added: number, coalesced: number): void {
    this.runtime.pendingEstimate += added;
    const limit = this.runtime.outboxSoftLimit;
    if ((coalesced > 0 || this.runtime.pendingEstimate > limit) && !this.queue.fullSignalled) {
      this.queue.fullSignalled = true;
      this.events.emit('sync.queue:action:full', { pending: this.runtime.pendingEstimate, limit });
    }
    this.tabChannel?.notifyCaptured();
    if (this.isLeader) this.scheduler.pushSoon(this.options.pushDebounceMs ?? 0);
    this.tracker.announce();
  }

  private async refreshPendingEstimate(queued?: number): Promise<void> {
    if (!this.db.isOpen()) return;
    this.runtime.pendingEstimate = queued ?? (await outbox.countQueued(this.db));
    if (this.runtime.pendingEstimate < this.runtime.outboxSoftLimit) {
      this.queue.fullSignalled = false;
      for (const resolve of this.queue.waiters.splice(0)) resolve();
    }
  }

  private observeServerTime(serverTime: number): void {
    const sample = serverTime - this.now();
    const offsetMs = this.clock.samples === 0 ? sample : this.clock.offsetMs + (sample - this.clock.offsetMs) * 0.3;
    this.clock = { offsetMs, samples: this.clock.samples + 1 };
    void this.db
      .table(STATE_TABLE)
      .put({ key: STATE_KEYS.clockOffset, value: Math.round(offsetMs) })
      .catch(() => {});
  }
}
