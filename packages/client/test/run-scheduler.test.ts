/**
 * `RunScheduler` on its own: one run (or engine task) at a time, the timer
 * that coalesces requests for a run into the earliest, pushes paced by
 * back-pressure, the backoff after failed runs, and no background runs while
 * the engine may not run.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RunEnd } from '../src/run-end.js';
import { RunScheduler, type FinishedRun, type RunPurpose } from '../src/run-scheduler.js';

const RETRY: RunEnd = { kind: 'failed', phase: 'push', failure: { kind: 'retry', code: 'store_unavailable', message: 'down', retryAfterMs: null } };
const REFUSED: RunEnd = { kind: 'failed', phase: 'push', failure: { kind: 'refused', code: 'forbidden', message: 'no' } };
const SYNCED: RunEnd = { kind: 'synced' };

/** A host whose runs end as scripted (then synced), each taking `runMs`, that fails the scheduler's backoff like the engine. */
function harness(ends: RunEnd[] = [], runMs = 0) {
  const state = { mayRun: true, paused: false, closed: false, queued: true, running: 0, maxRunning: 0, starts: [] as number[], purposes: [] as RunPurpose[] };
  const scheduler: RunScheduler<number> = new RunScheduler(
    {
      async runOnce(purpose): Promise<FinishedRun<number>> {
        state.purposes.push(purpose);
        state.running += 1;
        state.maxRunning = Math.max(state.maxRunning, state.running);
        state.starts.push(Date.now());
        if (runMs > 0) await new Promise((resolve) => setTimeout(resolve, runMs));
        state.running -= 1;
        const end = ends.shift() ?? SYNCED;
        if (end.kind === 'failed' && end.failure.kind === 'retry') scheduler.failed(end.failure.retryAfterMs);
        if (end.kind === 'synced') scheduler.succeeded();
        return { result: state.starts.length, end };
      },
      mayRun: () => state.mayRun && !state.paused && !state.closed,
      isPaused: () => state.paused,
      isClosed: () => state.closed,
      hasQueuedWrites: () => state.queued,
    },
    { baseMs: 1000, maxMs: 8000, errorAfter: 8 },
    () => 1,
    () => Date.now(),
  );
  return { scheduler, state };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('RunScheduler', () => {
  it('runs one at a time: a run asked for while one runs starts after it', async () => {
    const { scheduler, state } = harness([], 100);
    const both = Promise.all([scheduler.run(), scheduler.run()]);
    expect(scheduler.runsInFlight).toBe(2);
    await vi.advanceTimersByTimeAsync(250);
    expect(await both).toEqual([1, 2]);
    expect(state.maxRunning).toBe(1);
    expect(state.starts).toEqual([1_000_000, 1_000_100]);
    expect(scheduler.runsInFlight).toBe(0);
  });

  it('an engine task waits for the run before it, and a failed task does not hold the queue', async () => {
    const { scheduler, state } = harness([], 100);
    const order: string[] = [];
    void scheduler.run();
    const failed = scheduler.exclusive(async () => {
      order.push(`task after ${state.starts.length} run, ${state.running} running`);
      throw new Error('task failed');
    });
    const after = scheduler.exclusive(async () => order.push('next'));
    await vi.advanceTimersByTimeAsync(100);
    await expect(failed).rejects.toThrow('task failed');
    await after;
    expect(order).toEqual(['task after 1 run, 0 running', 'next']);
  });

  it('requests for a background run coalesce into the earliest one', async () => {
    const { scheduler, state } = harness();
    scheduler.schedule(300);
    scheduler.schedule(50);
    scheduler.schedule(200);
    await vi.advanceTimersByTimeAsync(1000);
    expect(state.starts).toEqual([1_000_050]);
  });

  it('a failed run is retried after its backoff delay, doubling, until one succeeds', async () => {
    const { scheduler, state } = harness([RETRY, RETRY]);
    scheduler.schedule(0);
    await vi.advanceTimersByTimeAsync(10_000);
    // random() = 1: the delays are the full 1 s, then 2 s; the third run succeeds and nothing follows.
    expect(state.starts).toEqual([1_000_000, 1_001_000, 1_003_000]);
  });

  it("a failed run the app asked for (sync()) is retried in the background after its backoff, like any other", async () => {
    const { scheduler, state } = harness([RETRY]);
    await scheduler.run();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(state.starts).toEqual([1_000_000, 1_001_000]);
    expect(state.purposes).toEqual(['sync', 'sync']);
  });

  it('a failed run the app asked for is not retried while the engine may not run (not started, a follower tab)', async () => {
    const { scheduler, state } = harness([RETRY]);
    state.mayRun = false;
    await scheduler.run();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(state.starts).toHaveLength(1);
  });

  it('no run asked for during a backoff starts before the backoff ends', async () => {
    const { scheduler, state } = harness([RETRY]);
    await scheduler.run();
    scheduler.schedule(0);
    await vi.advanceTimersByTimeAsync(999);
    expect(state.starts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(state.starts).toHaveLength(2);
  });

  it('resetBackoff (resume) lets the next run go at once', async () => {
    const { scheduler, state } = harness([RETRY]);
    await scheduler.run();
    scheduler.resetBackoff();
    scheduler.schedule(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(state.starts).toEqual([1_000_000, 1_000_000]);
  });

  it('a refused run is not retried', async () => {
    const { scheduler, state } = harness([REFUSED]);
    scheduler.schedule(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(state.starts).toHaveLength(1);
  });

  it('a run that fails after the engine paused is not retried', async () => {
    const { scheduler, state } = harness([RETRY], 100);
    scheduler.schedule(0);
    await vi.advanceTimersByTimeAsync(50);
    state.paused = true;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(state.starts).toHaveLength(1);
  });

  it('no background run is scheduled while the engine may not run (a follower tab, paused, closed)', async () => {
    const { scheduler, state } = harness();
    state.mayRun = false;
    scheduler.schedule(0);
    state.mayRun = true;
    state.closed = true;
    scheduler.schedule(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(state.starts).toEqual([]);
  });

  it('cancel drops the background run that waits', async () => {
    const { scheduler, state } = harness();
    scheduler.schedule(100);
    scheduler.cancel();
    await vi.advanceTimersByTimeAsync(1000);
    expect(state.starts).toEqual([]);
  });
});

describe('RunScheduler push pacing', () => {
  it('a write that finds no run going starts one at once, with no debounce', async () => {
    const { scheduler, state } = harness();
    scheduler.pushSoon();
    await vi.advanceTimersByTimeAsync(0);
    expect(state.starts).toEqual([1_000_000]);
  });

  it('writes captured while a run is going ride one run that starts as soon as it ends', async () => {
    const { scheduler, state } = harness([], 100);
    scheduler.pushSoon();
    await vi.advanceTimersByTimeAsync(10);
    scheduler.pushSoon();
    await vi.advanceTimersByTimeAsync(40);
    scheduler.pushSoon();
    await vi.advanceTimersByTimeAsync(1000);
    // The second starts as the first ends (the fake clock may have ticked once in between).
    expect(state.starts).toHaveLength(2);
    expect(state.starts[1]! - 1_000_100).toBeLessThanOrEqual(1);
    expect(state.maxRunning).toBe(1);
  });

  it('no run follows when the run going took every queued write along', async () => {
    const { scheduler, state } = harness([], 100);
    scheduler.pushSoon();
    await vi.advanceTimersByTimeAsync(10);
    scheduler.pushSoon();
    // The run's push loop took the write too: the outbox is empty when it ends.
    state.queued = false;
    await vi.advanceTimersByTimeAsync(1000);
    expect(state.starts).toEqual([1_000_000]);
  });

  it('a write during a backoff waits for the backoff to end', async () => {
    const { scheduler, state } = harness([RETRY]);
    await scheduler.run();
    scheduler.pushSoon();
    await vi.advanceTimersByTimeAsync(999);
    expect(state.starts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(state.starts).toHaveLength(2);
  });

  it('writes captured during a run that fails ride its retry, after the backoff, in one run', async () => {
    const { scheduler, state } = harness([RETRY], 100);
    scheduler.pushSoon();
    await vi.advanceTimersByTimeAsync(10);
    scheduler.pushSoon();
    await vi.advanceTimersByTimeAsync(10_000);
    // The first run ended (failed) at 100 ms; its backoff is 1 s.
    expect(state.starts).toHaveLength(2);
    expect(state.starts[1]! - 1_001_100).toBeLessThanOrEqual(1);
  });

  it('a run a write starts is a push run; a run the timer, the app or a retry starts is a sync run', async () => {
    const { scheduler, state } = harness([], 100);
    scheduler.pushSoon();
    await vi.advanceTimersByTimeAsync(10);
    scheduler.pushSoon();
    await vi.advanceTimersByTimeAsync(1000);
    scheduler.schedule(0);
    await vi.advanceTimersByTimeAsync(1000);
    const asked = scheduler.run();
    await vi.advanceTimersByTimeAsync(200);
    await asked;
    expect(state.purposes).toEqual(['push', 'push', 'sync', 'sync']);
  });

  it('a debounce the app asked for (pushDebounceMs) holds the first write', async () => {
    const { scheduler, state } = harness();
    scheduler.pushSoon(25);
    await vi.advanceTimersByTimeAsync(24);
    expect(state.starts).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(state.starts).toEqual([1_000_025]);
  });
});
