/**
 * One sync run: rescan when owed, push the outbox, pull new changes, record
 * the run; and what a failure does to the engine (pause on a refusal, back
 * off on the rest). `SyncEngine` calls `runSync` through its `RunScheduler`;
 * how the run ended is a `RunEnd` (`run-end.ts`).
 */
import { catchUpNewTables, owedTables } from './catch-up.js';
import type { BackoffOptions } from './backoff.js';
import type { EngineContext } from './context.js';
import type { ConflictEvent, PauseReason, RescanReason, SyncPhase, SyncStats, WorkspaceAccess } from './events.js';
import { accessAfterRefusedPush, failUnsyncedAsReadOnly, isRefusal } from './people/access.js';
import { OwnerChangedError, tokenUserMismatch, UserMismatchError } from './people/ownership.js';
import { isSyncProviderError } from './provider.js';
import { pullChanges } from './pull.js';
import { pushPending, type PushOutcome } from './push.js';
import { rescanDueAfterPush, rescanOwner, rescanScope } from './rescan.js';
import { readRunStart } from './run-start.js';
import { classifyFailure, endOfRun, pullsAfterPushFailure, runErrorCode, type Failure, type RunEnd } from './run-end.js';
import type { FinishedRun, RunPurpose, RunScheduler } from './run-scheduler.js';
import { RUNS_TABLE, type SyncRunRow } from './schema.js';
import type { SyncRunResult } from './engine-options.js';

/** What runs remember between them (the engine's, shared with its subscription). */
export interface RunState {
  /** A rescan asked for outside a run (`rescan()`, a subscription's `cursor_expired` or scope change). */
  rescanDue: RescanReason | null;
  /** The next run was asked for by the safety pull (see `safetyPullMs`). */
  safetyPullDue: boolean;
  /** Failures so far (runs and refused subscriptions), for `sync.stats:action`. */
  errorCount: number;
  lastPushAt: number | null;
  lastPullAt: number | null;
  /** The lease owner of the rescan in flight: `close()` gives it back if the tab closes first. */
  rescanLease: string | null;
  /** What the server lets the user do, as the latest push or refusal showed (`engine.access`). */
  access: WorkspaceAccess;
}

/** A refusal, as the engine pauses for it. */
export type Refusal = Extract<PauseReason, { kind: 'refused' }>;

/** What a run needs of its engine. */
export interface RunHost {
  readonly state: RunState;
  readonly backoff: BackoffOptions;
  readonly scheduler: Pick<RunScheduler<SyncRunResult>, 'succeeded' | 'failed'>;
  context(): EngineContext;
  now(): number;
  /** Aborted by `stop()`: the push loop ends at its next batch. */
  signal(): AbortSignal;
  isPaused(): boolean;
  /** Pauses the loops for a refusal (as `pause()` does for the app). */
  refuse(reason: Refusal): void;
  /** The signed-in user (`userId`), null when the app named none. */
  readonly userId: string | null;
  isSubscribed(): boolean;
  stopSubscription(): void;
  stats(): Promise<SyncStats>;
  /** The run ended with `error` (null: synced): the status re-counts held and failed ops. */
  noteRun(error: string | null): Promise<void>;
}

/** One run and whether the subscription must be reopened (the safety pull found it silent). */
export interface RunOutcome extends FinishedRun<SyncRunResult> {
  reopenSubscription: boolean;
}

/** Runs once. Never throws for sync failures: they are in the outcome's `end`. */
export async function runSync(host: RunHost, purpose: RunPurpose = 'sync'): Promise<RunOutcome> {
  const progress: RunProgress = {
    run: { started_at: host.now(), finished_at: null, pushed: 0, pulled: 0, conflicts: 0, error: null },
    conflicts: [],
    phase: 'push',
    safetyPull: host.state.safetyPullDue,
    reopenSubscription: false,
  };
  host.state.safetyPullDue = false;
  let end: RunEnd = { kind: 'paused' };
  if (!host.isPaused()) {
    try {
      await runSteps(host, progress, purpose);
      end = endOfRun(null);
      host.scheduler.succeeded();
    } catch (error) {
      end = endOfRun({ error, phase: progress.phase });
      if (end.kind === 'failed') reportFailure(host, end.phase, end.failure);
    }
  }
  const { run, conflicts } = progress;
  run.error = runErrorCode(end);
  run.finished_at = host.now();
  run.conflicts = conflicts.length;
  const ctx = host.context();
  // The run's row, the status's counts and the stats are written and read together, the stats
  // (four reads) only when someone listens: a write captured meanwhile waits for the run's end (P11).
  const [, , stats] = await Promise.all([
    recordRun(ctx, run),
    host.noteRun(run.error),
    ctx.events.hasListeners('sync.stats:action') ? host.stats() : null,
  ]);
  for (const conflict of conflicts) ctx.events.emit('sync.conflict:action:detected', conflict);
  if (stats) ctx.events.emit('sync.stats:action', stats);
  const { pushed, pulled, error } = run;
  return { result: { pushed, pulled, conflicts: run.conflicts, error }, end, reopenSubscription: progress.reopenSubscription };
}

/** What a run did so far (kept when it fails midway). */
interface RunProgress {
  run: SyncRunRow;
  conflicts: ConflictEvent[];
  /** The step the run is in, reported with its failure. */
  phase: SyncPhase;
  /** The run was asked for by the safety pull. */
  safetyPull: boolean;
  /** The safety pull found the subscription silent and stopped it: reopen it after the run. */
  reopenSubscription: boolean;
}

/** The run's steps; throws the failure that ends it. */
async function runSteps(host: RunHost, progress: RunProgress, purpose: RunPurpose): Promise<void> {
  const ctx = host.context();
  const { run, conflicts } = progress;
  let rescanned = false;
  const rescan = async (reason: RescanReason): Promise<number> => {
    progress.phase = 'snapshot';
    rescanned = true;
    host.stopSubscription();
    const owner = rescanOwner();
    host.state.rescanLease = owner;
    const outcome = await rescanScope(ctx, reason, owner, host.signal()).finally(() => {
      if (host.state.rescanLease === owner) host.state.rescanLease = null;
    });
    host.state.rescanDue = null;
    run.pulled += outcome.items;
    conflicts.push(...outcome.conflicts);
    // An adoption pushes its ops while it queues them.
    notePushed(host, run, outcome.pushed);
    conflicts.push(...outcome.pushed.conflicts);
    progress.phase = 'pull';
    return outcome.cursor;
  };

  // Nothing goes out with another user's token.
  if (host.userId !== null) {
    const tokenUser = await tokenUserMismatch(ctx.provider, host.userId);
    if (tokenUser !== null) throw new UserMismatchError(host.userId, tokenUser);
  }
  // The engine's state and, when nothing comes before the push, its first batch: one
  // transaction between a captured write and its push (P11).
  const start = await readRunStart(ctx, host.state.rescanDue === null);
  // Another user opened the database since (another tab): nothing more of this user's goes in or out.
  if (host.userId !== null && start.owner !== null && start.owner !== host.userId) throw new OwnerChangedError(host.userId, start.owner);
  let cursor = start.cursor;
  const owed = start.owedRescan ?? (start.adoption ? 'adoption' : null);
  if (cursor === null || host.state.rescanDue || owed) {
    cursor = await rescan(cursor === null ? 'fresh_device' : (host.state.rescanDue ?? owed!));
  }
  progress.phase = 'snapshot';
  // A rescan settles the catch-up too: what is still owed is read again after one.
  const caughtUp = await catchUpNewTables(ctx, rescanned ? await owedTables(ctx.db) : start.catchUp);
  run.pulled += caughtUp.items;
  conflicts.push(...caughtUp.conflicts);
  progress.phase = 'push';
  // Only a rescan leaves records for a rescan after the push: without one at the start or in
  // this run, there is nothing to check (one transaction fewer after every push).
  let keptByPush = false;
  const afterPushDue = async () => (rescanned || start.keptForRescanAfterPush || keptByPush) && (await rescanDueAfterPush(ctx));
  // A failed push does not keep this run from pulling (unless nothing can be reached); its error still fails the run.
  let pushError: unknown = null;
  // A refused push: a viewer now, or no longer a member. The pull tells which.
  let pushRefusal: unknown = null;
  try {
    const pushed = await pushPending(ctx, host.signal(), start.batch);
    notePushed(host, run, pushed);
    keptByPush = pushed.keptForRescan === true;
    // The settles moved the cursor past the device's own changes: the pull starts after them.
    if (pushed.cursor !== null) cursor = Math.max(cursor, pushed.cursor);
    conflicts.push(...pushed.conflicts);
  } catch (error) {
    if (isRefusal(error)) pushRefusal = error;
    else if (!pullsAfterPushFailure(classifyFailure(error))) throw error;
    else pushError = error;
  }
  // A run a captured write asked for ends with its push while the subscription is open: the
  // subscription delivers what others wrote (and this device's own writes back), and a pull
  // here would only hold up the next write's push (P11). A rescan stops the subscription, so a
  // run that rescanned still pulls from its snapshot.
  if (purpose === 'push' && host.isSubscribed() && !progress.safetyPull && !(await afterPushDue())) {
    if (pushError) throw pushError;
    return;
  }
  progress.phase = 'pull';
  const pullAll = async (from: number) => {
    let pulled;
    try {
      pulled = await pullChanges(ctx, from);
    } catch (error) {
      if (!isSyncProviderError(error) || error.code !== 'cursor_expired') throw error;
      pulled = await pullChanges(ctx, await rescan('cursor_expired'));
    }
    if (pulled.scopeChanged || (await afterPushDue())) pulled = await pullChanges(ctx, await rescan('scope_change'));
    return pulled;
  };
  let pulled;
  if (pushRefusal === null) {
    pulled = await pullAll(cursor);
  } else {
    const pull = await pullAll(cursor).then(
      (page) => ({ ok: true as const, page }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    // Revoked: the pull's refusal pauses the engine; not known yet (the network): the run is retried.
    if (!pull.ok) throw pull.error;
    // The user still reads: her writes fail with read_only, nothing retries them.
    if (accessAfterRefusedPush(pull) === 'read_only') {
      host.state.access = 'read_only';
      await failUnsyncedAsReadOnly(ctx, pushRefusal);
    }
    pulled = pull.page;
  }
  run.pulled += pulled.pulled;
  conflicts.push(...pulled.conflicts);
  host.state.lastPullAt = host.now();
  // Changes of others the subscription stayed silent about for a whole safety interval: its
  // connection is likely dead without knowing it. Reopen it (after the run, from the cursor just stored).
  if (progress.safetyPull && pulled.applied > 0 && host.isSubscribed()) {
    host.stopSubscription();
    progress.reopenSubscription = true;
  }
  if (pushError) {
    progress.phase = 'push';
    throw pushError;
  }
}

/** Counts what a push pass did in the run (a run may push during its rescan, then after it). */
function notePushed(host: RunHost, run: SyncRunRow, pushed: PushOutcome): void {
  run.pushed += pushed.pushed;
  if (pushed.pushed + pushed.failed > 0) host.state.lastPushAt = host.now();
  if (pushed.pushed > 0) host.state.access = 'read_write';
}

/** What a failure does: a refusal pauses the loops; anything else backs off (and is reported every `errorAfter` tries). */
export function reportFailure(
  host: Pick<RunHost, 'backoff' | 'scheduler' | 'refuse' | 'state' | 'context'>,
  phase: SyncPhase,
  failure: Failure,
): void {
  const { events } = host.context();
  host.state.errorCount += 1;
  if (failure.kind === 'refused') {
    host.refuse({ kind: 'refused', phase, code: failure.code, message: failure.message });
    events.emit('sync.error:action', { phase, code: failure.code, message: failure.message, paused: true });
    return;
  }
  const { attempt, delayMs } = host.scheduler.failed(failure.retryAfterMs);
  events.emit('sync.retry:action', { phase, attempt, delayMs, code: failure.code });
  if (attempt >= host.backoff.errorAfter && attempt % host.backoff.errorAfter === 0) {
    events.emit('sync.error:action', { phase, code: failure.code, message: failure.message, attempts: attempt });
  }
}

async function recordRun(ctx: EngineContext, run: SyncRunRow): Promise<void> {
  const runs = ctx.db.table<SyncRunRow, number>(RUNS_TABLE);
  const id = await runs.add(run);
  if (id > 1000) await runs.where('id').below(id - 1000).delete();
}
