/**
 * When the engine runs: one run (or engine task) at a time, the timer that
 * coalesces requests for a run into the earliest one, pushes paced by
 * back-pressure (a write goes at once when no run is going, else with the
 * next push), and the backoff after failed runs (PROTOCOL.md section 6).
 * What a run does is `SyncEngine`'s.
 */
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { retriesAfter, type RunEnd } from './run-end.js';

/** One run's result (what `SyncEngine.sync()` returns) and how it ended. */
export interface FinishedRun<R> {
  result: R;
  end: RunEnd;
}

/**
 * Why a run starts: `sync` (asked for by the app, the timer, the poll, the
 * subscription) pushes and pulls; `push` (asked for by captured writes) may
 * stop after its push while the subscription delivers (`run.ts`).
 */
export type RunPurpose = 'sync' | 'push';

/** What the scheduler asks of its engine. */
export interface RunHost<R> {
  /** One run; never throws for sync failures (they are in `end`). */
  runOnce(purpose: RunPurpose): Promise<FinishedRun<R>>;
  /** True while background runs may be scheduled (the leader tab, open, not paused). */
  mayRun(): boolean;
  isPaused(): boolean;
  isClosed(): boolean;
  /** True while the outbox holds ops to push (the engine's estimate). */
  hasQueuedWrites(): boolean;
}

/** Serializes the engine's runs and times the background ones. */
export class RunScheduler<R> {
  private queue: Promise<unknown> = Promise.resolve();
  private inFlight = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private dueAt = Infinity;
  private failures = 0;
  private nextRetryDelayMs = 0;
  private retryNotBefore = 0;
  /** A write was captured while a run was queued or running: run again as soon as it ends. */
  private pushAfterRun = false;

  constructor(
    private readonly host: RunHost<R>,
    private readonly backoff: BackoffOptions,
    private readonly random: () => number,
    /** The engine's wall clock (`options.now`). */
    private readonly now: () => number,
  ) {}

  /** Runs `task` after every task queued before it, whatever became of them. */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task, task);
    this.queue = result.catch(() => {});
    return result;
  }

  /**
   * One run through the queue (the app's `sync()`); counted in `runsInFlight` while queued or
   * running. One that fails schedules its retry after the backoff delay, as a background run does:
   * it may have closed the realtime stream (a rescan does) and only a run that ends synced opens it
   * again, so without the retry a device with nothing to push stayed deaf to other devices until
   * something else asked for a run (the fault harness's seed 29500: 30 s behind after faults stopped).
   */
  run(): Promise<R> {
    return this.runTracked().then(({ result, end }) => {
      this.scheduleRetry(end);
      return result;
    });
  }

  private runTracked(purpose: RunPurpose = 'sync'): Promise<FinishedRun<R>> {
    this.inFlight += 1;
    return this.exclusive(() => this.host.runOnce(purpose)).finally(() => {
      this.inFlight -= 1;
      // Writes captured while it ran (after its push loop took its last batch) go now, together.
      if (this.inFlight === 0 && this.pushAfterRun) {
        this.pushAfterRun = false;
        if (this.host.hasQueuedWrites()) this.pushSoon();
      }
    });
  }

  /**
   * A write waits in the outbox: pushed at once (after `delayMs`, 0 unless the
   * app asked for a debounce) when no run is queued or running; otherwise it
   * rides that run's push loop, or the run that starts as soon as that one
   * ends. So one push is in flight at a time and each carries every write
   * captured while the last was on its way (batching by back-pressure, not
   * by a timer); a backoff still holds every run.
   */
  pushSoon(delayMs = 0): void {
    if (this.inFlight > 0) {
      this.pushAfterRun = true;
      return;
    }
    // Not even a timer's turn of the event loop when nothing holds the run back.
    if (delayMs <= 0 && !this.timer && this.now() >= this.retryNotBefore && this.host.mayRun()) {
      this.runInBackground('push');
      return;
    }
    this.schedule(delayMs);
  }

  /** Runs queued or running. */
  get runsInFlight(): number {
    return this.inFlight;
  }

  /** Resolves when the queue is empty (the run in flight ended, however). */
  idle(): Promise<void> {
    return this.queue.then(
      () => {},
      () => {},
    );
  }

  /**
   * Asks for a background run in `delayMs`, never before the current backoff
   * is over; an earlier request already waiting wins. A run that fails
   * schedules its retry after the backoff delay.
   */
  schedule(delayMs: number): void {
    if (!this.host.mayRun()) return;
    // Nothing runs before the current backoff is over, whatever asked for the run.
    const now = this.now();
    const due = Math.max(now + delayMs, this.retryNotBefore);
    delayMs = due - now;
    if (this.timer && this.dueAt <= due) return;
    if (this.timer) clearTimeout(this.timer);
    this.dueAt = due;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.dueAt = Infinity;
      this.runInBackground();
    }, delayMs);
  }

  /** Starts a background run now; a run that fails schedules its retry after the backoff delay. */
  private runInBackground(purpose: RunPurpose = 'sync'): void {
    this.runTracked(purpose).then(
      ({ end }) => this.scheduleRetry(end),
      (error: unknown) => {
        // Only a closed database gets here (recording the run failed): nothing left to run.
        if (!this.host.isClosed()) console.error('or3-sync: sync run failed', error);
      },
    );
  }

  /** Schedules the retry of a run that ended as one to retry (after the backoff delay), unless the engine paused. */
  private scheduleRetry(end: RunEnd): void {
    if (retriesAfter(end) && !this.host.isPaused()) this.schedule(this.nextRetryDelayMs);
  }

  /** Drops the background run that is waiting, if any (and the one a write asked to follow the run going). */
  cancel(): void {
    this.pushAfterRun = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.dueAt = Infinity;
  }

  /** A run succeeded: the backoff starts over. */
  succeeded(): void {
    this.failures = 0;
    this.nextRetryDelayMs = 0;
    this.retryNotBefore = 0;
  }

  /** A run failed and will be retried: its attempt number (1 for the first in a row) and the delay before the retry. */
  failed(retryAfterMs: number | null | undefined): { attempt: number; delayMs: number } {
    this.failures += 1;
    this.nextRetryDelayMs = backoffDelay(this.failures, this.backoff, this.random, retryAfterMs);
    this.retryNotBefore = this.now() + this.nextRetryDelayMs;
    return { attempt: this.failures, delayMs: this.nextRetryDelayMs };
  }

  /** Lifts the backoff (after `resume()`): the next run may go at once. */
  resetBackoff(): void {
    this.failures = 0;
    this.retryNotBefore = 0;
  }
}
