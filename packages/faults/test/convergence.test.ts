/**
 * The CI smoke of the harness: a few seeds of real engines through the fault
 * proxy against the real binary (killed and restarted, GC run beside it), and
 * a few with three nodes on one Postgres schema under the cluster's faults.
 * The long mode is `npm run faults -w packages/faults -- --seeds 1000`.
 */
import { describe, expect, it } from 'vitest';
import { formatFailure } from '../src/cli-format.js';
import { CLUSTER_FAULTS } from '../src/cluster.js';
import { binarySupportsPostgres } from '../src/gateway-process.js';
import { replayCommand, runSeed, type SeedReport } from '../src/run-seed.js';

// Seeds of the long mode, picked so that between them every device shape occurs (two tabs with and
// without Web Locks, a project-scoped device, GC, skewed clocks).
const SEEDS = [1, 2, 3, 4, 8];
const DEVICES = 4;
const STEPS = 150;
const POSTGRES_URL = process.env.OR3_FAULTS_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const postgres = await binarySupportsPostgres();

function expectConverged(report: SeedReport): void {
  expect(report.violations, formatFailure(report)).toEqual([]);
}

describe('convergence under faults', () => {
  const reports: SeedReport[] = [];

  for (const seed of SEEDS) {
    it(`seed ${seed}: ${DEVICES} devices, ${STEPS} steps, every device ends identical to the server and nothing acknowledged is lost`, async () => {
      const report = await runSeed({ seed, devices: DEVICES, steps: STEPS });
      reports.push(report);
      expectConverged(report);
    });
  }

  it('the seeds went through every fault, server kills, GC, reloads, offline periods, scope changes, two-tab devices and adoptions', () => {
    expect(reports).toHaveLength(SEEDS.length);
    const sum = (f: (r: SeedReport) => number) => reports.reduce((total, r) => total + f(r), 0);
    const tallies = reports.flatMap((r) => Object.values(r.devices));
    for (const fault of ['delay', 'drop_request', 'drop_response', 'duplicate', 'unavailable'] as const) {
      expect(sum((r) => r.proxy[fault]), fault).toBeGreaterThan(0);
    }
    expect(sum((r) => r.proxy.sockets_cut)).toBeGreaterThan(0);
    expect(sum((r) => r.serverKills)).toBeGreaterThan(0);
    expect(sum((r) => r.gcPasses)).toBeGreaterThan(0);
    expect(sum((r) => r.opsAcknowledged)).toBeGreaterThan(100);
    expect(tallies.reduce((n, t) => n + t.reloads, 0)).toBeGreaterThan(0);
    expect(tallies.reduce((n, t) => n + t.adoptedRows, 0), 'devices with rows from before sync').toBeGreaterThan(0);
    expect(tallies.reduce((n, t) => n + t.offlinePeriods, 0)).toBeGreaterThan(0);
    expect(tallies.reduce((n, t) => n + t.conflicts, 0)).toBeGreaterThan(0);
    expect(tallies.reduce((n, t) => n + (t.rescans.cursor_expired ?? 0), 0)).toBeGreaterThan(0);
    expect(tallies.reduce((n, t) => n + (t.rescans.scope_change ?? 0), 0)).toBeGreaterThan(0);
    const shapes = reports.flatMap((r) => Object.values(r.shapes));
    expect(shapes.some((s) => s.includes('project p1'))).toBe(true);
    expect(shapes.some((s) => s.includes('tabs 2 (web-locks)'))).toBe(true);
    expect(shapes.some((s) => s.includes('tabs 2 (none)'))).toBe(true);
  });

  it('a failing seed names the command that replays it', () => {
    expect(replayCommand({ seed: 17, devices: 4, steps: 150 })).toBe(
      'npm run faults -w packages/faults -- --seed 17 --devices 4 --steps 150',
    );
  });

  it.skipIf(!postgres)(`seed 1 on Postgres (${POSTGRES_URL}, a fresh schema)`, async () => {
    expectConverged(await runSeed({ seed: 1, devices: DEVICES, steps: STEPS, postgresUrl: POSTGRES_URL }));
  });
});

// Several nodes on one Postgres schema (`--nodes 3`): the long run is in bench/README.md.
const NODES = 3;
// Postgres restarts break every other connection on the machine: only the test of every fault kind restarts it.
const WITHOUT_POSTGRES_RESTARTS = CLUSTER_FAULTS.filter((kind) => kind !== 'restart_postgres');

describe.skipIf(!postgres)(`${NODES} nodes on one Postgres schema under cluster faults`, () => {
  it('seed 2: a node killed mid-push, a listen connection terminated, Postgres restarted, a node paused; every device catches up by itself within the bound, nothing acknowledged is lost, one gap-free log', async () => {
    const report = await runSeed({ seed: 2, devices: DEVICES, steps: STEPS, postgresUrl: POSTGRES_URL, nodes: NODES, everyClusterFault: true });
    expectConverged(report);
    for (const kind of CLUSTER_FAULTS) {
      expect(report.faults[kind], kind).toBeGreaterThan(0);
      expect(report.faults.slowestCatchUpMs[kind], `catch-up after ${kind}`).toBeDefined();
    }
    expect(report.laneMoves, 'devices moved between nodes').toBeGreaterThan(0);
  });

  for (const seed of [3, 4]) {
    it(`seed ${seed}: ${NODES} nodes, the cluster faults but Postgres restarts, drawn by the seed`, async () => {
      expectConverged(
        await runSeed({ seed, devices: DEVICES, steps: STEPS, postgresUrl: POSTGRES_URL, nodes: NODES, clusterFaults: WITHOUT_POSTGRES_RESTARTS }),
      );
    });
  }

  it('a failing cluster seed names the command that replays it', () => {
    expect(replayCommand({ seed: 5, devices: 4, steps: 150, postgresUrl: POSTGRES_URL, nodes: 3, clusterFaults: ['kill_node', 'pause_node'] })).toBe(
      `npm run faults -w packages/faults -- --seed 5 --devices 4 --steps 150 --postgres '${POSTGRES_URL}' --nodes 3 --cluster-faults kill_node,pause_node`,
    );
  });
});
