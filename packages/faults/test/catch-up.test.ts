/**
 * The catch-up check after a server-side fault: every device online all
 * along reaches the head of the moment the fault ended within the bound, by
 * its own loops; one that does not is reported, one that went offline is not.
 */
import { describe, expect, it } from 'vitest';
import { FaultDriver, type WatchedDevice } from '../src/cluster-faults.js';
import type { Violation } from '../src/invariants.js';
import { Prng } from '../src/prng.js';

function device(name: string, cursor: () => number, online = true): WatchedDevice & { online: boolean } {
  return {
    name,
    projectId: null,
    online,
    tally: { reloads: 0, adoptedRows: 0, offlinePeriods: online ? 0 : 1, rescans: {}, conflicts: 0, retries: 0, errors: {} },
    stats: async () => ({ pending: 0, failed: 0, cursor: cursor() }) as Awaited<ReturnType<WatchedDevice['stats']>>,
    diagnose: async () => `cursor ${cursor()}`,
  };
}

function driver(devices: WatchedDevice[], violations: Violation[]): FaultDriver {
  const unused = () => Promise.reject(new Error('no cluster faults in this test'));
  return new FaultDriver({
    cluster: { nodes: [], nextPushTo: unused, cutListen: unused, restartPostgres: unused, pause: unused },
    devices,
    kinds: [],
    prng: new Prng(1),
    violations,
    note: () => {},
    head: async (projectId) => (projectId === null ? 10 : 6),
    catchUpBoundMs: 300,
  });
}

describe('realtime_stream_catches_up_within_bound', () => {
  it('a device left behind the head past the bound is reported', async () => {
    const violations: Violation[] = [];
    await driver([device('d0', () => 10), device('d1', () => 7)], violations).settle();
    expect(violations).toHaveLength(1);
    expect(violations[0]!.rule).toBe('realtime_stream_catches_up_within_bound');
    expect(violations[0]!.detail).toContain('d1 at 7 of 10');
  });

  it('a device that reaches the head within the bound passes, and its catch-up time is recorded', async () => {
    const violations: Violation[] = [];
    const started = Date.now();
    const d = driver([device('d0', () => (Date.now() - started > 100 ? 10 : 3))], violations);
    await d.settle();
    expect(violations).toEqual([]);
    expect(d.counts.slowestCatchUpMs.faults_stop).toBeGreaterThanOrEqual(100);
  });

  it('a device that was offline when the fault ended is not held to the bound, even back online', async () => {
    const violations: Violation[] = [];
    const d0 = device('d0', () => 2, false);
    setTimeout(() => (d0.online = true), 50);
    await driver([d0], violations).settle();
    expect(violations).toEqual([]);
  });

  it('a device syncing one project is held to the last version in its scope, not the head', async () => {
    const violations: Violation[] = [];
    const scoped = { ...device('d1', () => 6), projectId: 'p1' };
    await driver([device('d0', () => 10), scoped], violations).settle();
    expect(violations).toEqual([]);
  });

  it('a GC pass during the catch-up drops the check (the log purged under it is a rescan race)', async () => {
    const violations: Violation[] = [];
    const d = driver([device('d0', () => 2)], violations);
    setTimeout(() => d.noteGc(), 50);
    await d.settle();
    expect(violations).toEqual([]);
  });
});
