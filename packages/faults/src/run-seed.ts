/**
 * One seed of the harness: a fresh gateway (SQLite file or Postgres schema;
 * on Postgres possibly several nodes), the proxy in front of it, N devices
 * doing the seed's workload through the proxy's faults while nodes are killed
 * and restarted (and in a cluster: listen connections cut, Postgres
 * restarted, nodes paused); then faults stop, every device must catch up by
 * itself, everyone syncs to quiescence, and the oracle checks the result.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckLedger } from './ack-ledger.js';
import { DEFAULT_FAULT_RATES, FaultProxy, PASS_ALL, seededSchedule, type FaultRates, type ProxyCounts } from './fault-proxy.js';
import { Cluster, CLUSTER_FAULTS, type ClusterFault } from './cluster.js';
import { CLUSTER_REQUEST_TIMEOUT_MS, FaultDriver, type FaultCounts } from './cluster-faults.js';
import { runGc, type GatewayProcess } from './gateway-process.js';
import { checkConvergence, type Violation } from './invariants.js';
import { Prng } from './prng.js';
import { readServerState, readSnapshot } from './server-state.js';
import type { SnapshotItem } from '@or3/sync-client';
import { SimulatedDevice, SYNCED_TABLES, deleteMode, type DeviceTally } from './simulated-device.js';
import { DEVICE_ACTION_WEIGHTS, IdSource, performDeviceAction } from './workload.js';

export interface SeedConfig {
  seed: number;
  /** Simulated devices. */
  devices: number;
  /** Workload steps (device actions and server kills). */
  steps: number;
  /** A Postgres URL to run on (a fresh schema per seed); SQLite in a temp dir when absent. */
  postgresUrl?: string;
  /** Gateway nodes on the one Postgres schema (default 1; more need `postgresUrl`). */
  nodes?: number;
  /** The cluster faults a run of several nodes draws (default all of them). */
  clusterFaults?: readonly ClusterFault[];
  /** Chance that a step of a cluster run starts a cluster fault. */
  clusterFaultChance?: number;
  /** Start each of `clusterFaults` once at fixed steps too, so a short run meets every kind. */
  everyClusterFault?: boolean;
  rates?: FaultRates;
  /** Chance that a step kills the server (it restarts after a short while). */
  killChance?: number;
  /** Chance that a step runs `or3-sync gc` (in the seeds that collect garbage). */
  gcChance?: number;
  /** How long quiescence may take once faults stop. */
  quiesceTimeoutMs?: number;
}

export interface SeedReport {
  seed: number;
  store: 'sqlite' | 'postgres';
  ok: boolean;
  violations: Violation[];
  durationMs: number;
  replay: string;
  /** What the run went through, so a run that exercised nothing shows it. */
  proxy: ProxyCounts;
  nodes: number;
  serverKills: number;
  /** The server-side faults (kills, and in a cluster the rest) and the slowest catch-up after each kind. */
  faults: FaultCounts;
  /** Times a device's requests or realtime connection moved to another node. */
  laneMoves: number;
  gcPasses: number;
  opsSent: number;
  opsAcknowledged: number;
  logLength: number;
  devices: Record<string, DeviceTally>;
  /** Each device's shape (tabs, leader election, limits, clock skew). */
  shapes: Record<string, string>;
  /** The last steps, for a failure report. */
  trace: string[];
  serverLogTail: string;
}

/** The command that runs this seed again. */
export function replayCommand(config: SeedConfig): string {
  const parts = ['npm run faults -w packages/faults --', `--seed ${config.seed}`, `--devices ${config.devices}`, `--steps ${config.steps}`];
  if (config.postgresUrl) parts.push(`--postgres '${config.postgresUrl}'`);
  if ((config.nodes ?? 1) > 1) parts.push(`--nodes ${config.nodes}`);
  if (config.clusterFaults && config.clusterFaults.length < CLUSTER_FAULTS.length) parts.push(`--cluster-faults ${config.clusterFaults.join(',')}`);
  if (config.everyClusterFault) parts.push('--every-cluster-fault');
  return parts.join(' ');
}

/** Synced tables as the oracle needs them. */
const ORACLE_TABLES = Object.fromEntries(
  Object.keys(SYNCED_TABLES).map((name) => [name, { deletes: deleteMode(name), primaryKey: 'id' }]),
);

/** Gateway flags of every run: no rate limits or periodic GC in the way of the faults under test. */
const SERVE_FLAGS = [
  '--rate-push-per-minute',
  '0',
  '--rate-pull-per-minute',
  '0',
  '--rate-subscribe-per-minute',
  '0',
  '--rate-anonymous-per-minute',
  '0',
  '--gc-interval-secs',
  '0',
];

export async function runSeed(config: SeedConfig): Promise<SeedReport> {
  const started = Date.now();
  const prng = new Prng(config.seed);
  const workload = prng.fork('workload');
  const rates = config.rates ?? DEFAULT_FAULT_RATES;
  const killChance = config.killChance ?? 0.04;
  const trace: string[] = [];
  const note = (line: string) => {
    trace.push(`${((Date.now() - started) / 1000).toFixed(2)}s ${line}`);
    if (trace.length > 400) trace.shift();
  };
  const dir = mkdtempSync(join(tmpdir(), 'or3-faults-'));
  const schema = `faults_${config.seed}_${process.pid}_${Date.now() % 1_000_000}`;
  const database = config.postgresUrl ? postgresDatabase(config.postgresUrl, schema) : `sqlite://${dir}/f.db`;
  const nodes = config.nodes ?? 1;
  if (nodes > 1 && !config.postgresUrl) throw new Error('several nodes need Postgres (--postgres)');
  const violations: Violation[] = [];
  const ledger = new AckLedger();
  const devices: SimulatedDevice[] = [];
  const shapes: Record<string, string> = {};
  let gcPasses = 0;
  let logLength = 0;
  const preexisting: { device: string; table: string; pk: string }[] = [];
  let cluster: Cluster | null = null;
  let proxy: FaultProxy | null = null;
  let driver: FaultDriver | null = null;
  try {
    cluster = await Cluster.start({
      database,
      ...(config.postgresUrl ? { adminUrl: config.postgresUrl } : {}),
      nodes,
      tag: `or3f-${process.pid}-${config.seed}`,
      extraArgs: SERVE_FLAGS,
      cwd: dir,
      prng: prng.fork('balancer'),
    });
    const c = cluster;
    // The harness's own requests go to a node that is up; the devices' go through the proxy.
    const gateway = (): GatewayProcess => c.live;
    proxy = await FaultProxy.start();
    proxy.setRouter((lane, kind, path) => c.route(lane, kind, path));
    const ownerToken = await gateway().token('owner');
    const created = await gateway().api<{ workspace_id: string }>(ownerToken, 'POST', '/v1/workspaces', { name: `faults ${config.seed}` });
    if (created.status !== 201) throw new Error(`create workspace: HTTP ${created.status}`);
    const workspaceId = created.body.workspace_id;
    for (let i = 0; i < config.devices; i++) {
      const user = `user-${i}`;
      const member = await gateway().api(ownerToken, 'PUT', `/v1/workspaces/${workspaceId}/members/${user}`, { role: 'editor' });
      if (member.status >= 300) throw new Error(`add member: HTTP ${member.status}`);
      const deviceShape = prng.fork(`device-${i}`);
      // Some devices' clocks are off by minutes: their first pushes meet clock_skew until the offset settles.
      const skewMs = deviceShape.pick([0, 0, 0, 3 * MINUTE, 10 * MINUTE, -10 * MINUTE]);
      const device = new SimulatedDevice({
        name: `d${i}`,
        workspaceId,
        baseUrl: proxy.url,
        token: await gateway().token(user),
        ledger,
        proxy,
        // Devices differ in shape: small push batches fail halfway through an outbox, a tiny outbox
        // limit coalesces never-sent ops, small pull and snapshot pages interleave with others' writes;
        // a device without a batch size pushes a backlog in the server's largest batches.
        engine: {
          pushBatchSize: deviceShape.pick([3, 10, 100, undefined]),
          outboxSoftLimit: deviceShape.pick([10_000, 10_000, 4]),
          pullLimit: deviceShape.pick([500, 3]),
          now: () => Date.now() + skewMs,
        },
        snapshotLimit: deviceShape.pick([0, 4]),
        // In a cluster a paused node must outlast the client's deadline.
        ...(nodes > 1 ? { requestTimeoutMs: CLUSTER_REQUEST_TIMEOUT_MS } : {}),
        // Some devices have two tabs on their database: one leads (Web Locks), or both do (no locks).
        tabs: deviceShape.pick([1, 1, 2]),
        leaderElection: deviceShape.pick(['web-locks', 'none'] as const),
        // Some devices sync one project alone (d0 always syncs everything, the reference of the checks).
        projectId: i === 0 ? null : deviceShape.pick([null, null, null, 'p1']),
        // Some devices were used offline before sync was switched on: their rows must be adopted, never lost.
        preexisting: deviceShape.chance(0.5) ? preexistingRows(`d${i}`, deviceShape) : undefined,
      });
      for (const [table, rows] of Object.entries(device.preexisting)) {
        for (const row of rows) preexisting.push({ device: device.name, table, pk: String(row.id) });
      }
      shapes[device.name] = `${device.projectId ? `project ${device.projectId}, ` : ''}tabs ${device.tabCount} (${device.tabCount > 1 ? device.leaderElection : 'alone'}), skew ${skewMs / MINUTE} min, ${JSON.stringify({ ...device.engineShape })}`;
      await device.open();
      devices.push(device);
    }
    proxy.setSchedule(seededSchedule(prng.fork('proxy'), rates));

    // --- the faulty phase
    const ids = new IdSource();
    const offlineUntil = new Map<SimulatedDevice, number>();
    const clusterPrng = prng.fork('cluster');
    const kinds = nodes > 1 ? (config.clusterFaults ?? CLUSTER_FAULTS) : (['kill_node'] as const);
    const d = new FaultDriver({
      cluster: c,
      devices,
      kinds,
      prng: clusterPrng,
      violations,
      note,
      head: (projectId) => retrying(() => scopeHead(gateway(), ownerToken, workspaceId, projectId)),
    });
    driver = d;
    const fixed = new Map(config.everyClusterFault ? kinds.map((kind, i) => [Math.floor(((i + 1) * config.steps) / (kinds.length + 1)), kind]) : []);
    // Some seeds collect garbage as if days had passed: 8 days (past min_retention; active devices
    // hold the log back) or 400 days (every device past device_ttl, tombstone payloads purged).
    const collectsGarbage = prng.fork('shape').chance(0.6);
    const gcChance = collectsGarbage ? (config.gcChance ?? 0.03) : 0;
    for (let step = 0; step < config.steps; step++) {
      for (const [device, until] of offlineUntil) {
        if (step >= until) {
          device.setOnline(true);
          offlineUntil.delete(device);
          note(`${device.name} back online`);
        }
      }
      const killNow = workload.chance(killChance);
      const downMs = workload.between(50, 1500);
      const device = workload.pick(devices);
      const action = workload.weighted(DEVICE_ACTION_WEIGHTS);
      const offlineSteps = workload.chance(0.2) ? workload.between(20, 60) : workload.between(2, 12);
      const pauseMs = workload.int(40);
      const gcNow = workload.chance(gcChance);
      const gcDays = workload.pick([8, 400]);
      if (killNow) d.start('kill_node', nodes > 1 ? clusterPrng.int(nodes) : 0, downMs);
      const kind = fixed.get(step);
      if (kind) {
        while (d.busy) await sleep(20);
        d.start(kind, clusterPrng.int(nodes), kind === 'pause_node' ? CLUSTER_REQUEST_TIMEOUT_MS + 1000 : downMs);
      }
      if (nodes > 1) d.maybeStart(config.clusterFaultChance ?? 0.025);
      if (gcNow) {
        // A Postgres restart under way fails the pass; it is tried again once Postgres is back.
        const reports = await retrying(() => runGc(database, Date.now() + gcDays * DAY));
        gcPasses += 1;
        d.noteGc();
        const r = reports[0];
        note(`gc as of +${gcDays} d: purged ${r?.log_entries_purged} log entries, ${r?.tombstone_payloads_purged} tombstone payloads; oldest retained ${r?.oldest_retained_version}`);
      }
      try {
        const what = await performDeviceAction(device, action, workload.fork(`step-${step}`), ids);
        note(`${device.name} ${what}`);
        if (action === 'go_offline') offlineUntil.set(device, step + offlineSteps);
      } catch (error) {
        violations.push({ rule: 'local_write_succeeds', detail: `${device.name} ${action} at step ${step}: ${String(error)}` });
        note(`${device.name} ${action} FAILED: ${String(error)}`);
      }
      await sleep(pauseMs);
    }

    // --- faults stop; everyone syncs
    note('faults stop');
    proxy.setSchedule(PASS_ALL);
    for (const device of devices) device.setOnline(true);
    await d.settle();
    await quiesce(gateway, ownerToken, workspaceId, devices, config.quiesceTimeoutMs ?? 60_000, note);
    for (const device of devices) await device.stop();

    const server = await readServerState(gateway(), ownerToken, workspaceId);
    logLength = server.log.length;
    const states = [];
    for (const device of devices) states.push(await device.state());
    const scopedSnapshots: Record<string, SnapshotItem[]> = {};
    for (const projectId of new Set(devices.map((d) => d.projectId))) {
      if (projectId !== null) scopedSnapshots[projectId] = (await readSnapshot(gateway(), ownerToken, workspaceId, projectId)).items;
    }
    violations.push(
      ...checkConvergence({
        devices: states,
        server,
        sent: ledger.sent,
        received: ledger.received,
        tables: ORACLE_TABLES,
        scopedSnapshots,
        preexisting,
      }),
    );
  } catch (error) {
    violations.push({ rule: 'run_completes', detail: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  } finally {
    for (const device of devices) await device.close().catch(() => {});
    await proxy?.close();
    await cluster?.stop();
    if (config.postgresUrl) dropPostgresSchema(config.postgresUrl, schema);
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    seed: config.seed,
    store: config.postgresUrl ? 'postgres' : 'sqlite',
    ok: violations.length === 0,
    violations,
    durationMs: Date.now() - started,
    replay: replayCommand(config),
    proxy: proxy?.counts ?? ({} as ProxyCounts),
    nodes,
    serverKills: driver?.counts.kill_node ?? 0,
    faults: driver?.counts ?? { kill_node: 0, cut_listen: 0, restart_postgres: 0, pause_node: 0, slowestCatchUpMs: {} },
    laneMoves: cluster?.laneMoves ?? 0,
    gcPasses,
    opsSent: ledger.sent.size,
    opsAcknowledged: new Set(ledger.acknowledged().map((r) => r.result.op_id)).size,
    logLength,
    devices: Object.fromEntries(devices.map((d) => [d.name, d.tally])),
    shapes,
    trace: trace.slice(-60),
    serverLogTail: cluster?.logTail() ?? '',
  };
}

/**
 * Runs sync rounds until every device has an empty outbox and stands at the
 * server's head, twice in a row with the head unchanged.
 */
async function quiesce(
  gateway: () => GatewayProcess,
  token: string,
  workspaceId: string,
  devices: SimulatedDevice[],
  timeoutMs: number,
  note: (line: string) => void,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let stableRounds = 0;
  let lastHead = -1;
  let lastState = '';
  while (stableRounds < 2) {
    if (Date.now() > deadline) throw new Error(`no quiescence within ${timeoutMs} ms: ${lastState}`);
    for (const device of devices) await device.engine.sync();
    const head = await serverHead(gateway(), token, workspaceId);
    const stats = await Promise.all(devices.map((d) => d.engine.stats()));
    lastState = `head ${head}; ${devices.map((d, i) => `${d.name}: cursor ${stats[i]!.cursor}, pending ${stats[i]!.pending}, failed ${stats[i]!.failed}`).join('; ')}`;
    const settled = stats.every((s) => s.pending === 0 && s.failed === 0 && s.cursor === head);
    stableRounds = settled && head === lastHead ? stableRounds + 1 : settled ? 1 : 0;
    lastHead = head;
    if (!settled) await sleep(50);
  }
  note(`quiescent: ${lastState}`);
}

/** The workspace's head, or the last version of a record in `projectId`'s scope. */
async function scopeHead(gateway: GatewayProcess, token: string, workspaceId: string, projectId: string | null): Promise<number> {
  if (projectId === null) return serverHead(gateway, token, workspaceId);
  const { items } = await readSnapshot(gateway, token, workspaceId, projectId);
  return items.reduce((max, item) => Math.max(max, item.server_version), 0);
}

async function serverHead(gateway: GatewayProcess, token: string, workspaceId: string): Promise<number> {
  const { status, body } = await gateway.api<{ snapshot_version: number }>(token, 'GET', `/v1/workspaces/${workspaceId}/snapshot?limit=1`);
  if (status !== 200) throw new Error(`snapshot: HTTP ${status}`);
  return body.snapshot_version;
}

/** The database at `url` in a schema of its own (`?schema=`, which the server's migrations create). */
function postgresDatabase(url: string, schema: string): string {
  const withSchema = new URL(url);
  withSchema.searchParams.set('schema', schema);
  return withSchema.toString();
}

/** Drops a seed's schema; a machine without `psql` keeps it (it is named after the seed and process). */
function dropPostgresSchema(url: string, schema: string): void {
  try {
    execFileSync('psql', [url, '-q', '-c', `DROP SCHEMA IF EXISTS ${schema} CASCADE`], { stdio: 'ignore' });
  } catch {
    // Nothing to clean up with, or nothing to clean.
  }
}

/**
 * A device's rows from before sync: threads in and out of project `p1` with messages, its own kv
 * rows, and kv `pre-shared`, which every such device has (LWW decides, by each row's own clock).
 * No `hlc`, some no `clock`, as an app without sync leaves them.
 */
function preexistingRows(device: string, prng: Prng): Record<string, Record<string, unknown>[]> {
  const threads = Array.from({ length: prng.between(1, 6) }, (_, i) => ({
    id: `pre-${device}-t${i}`,
    project_id: prng.pick(['p1', 'p2', null]),
    title: `before sync ${i}`,
    ...(prng.chance(0.5) ? { clock: prng.between(1, 4) } : {}),
    updated_at: 1_764_000_000 + i,
  }));
  const messages = threads.flatMap((thread, t) =>
    Array.from({ length: prng.int(3) }, (_, i) => ({ id: `pre-${device}-m${t}-${i}`, thread_id: thread.id, index: i, content: `old ${i}` })),
  );
  const kv = [
    { id: `pre-${device}-k`, value: device },
    { id: 'pre-shared', value: device, clock: prng.between(1, 5) },
  ];
  return { threads, messages, kv };
}

const MINUTE = 60_000;
const DAY = 86_400_000;

/** `read`, tried again for a few seconds while the servers recover (a node restarting, Postgres back). */
async function retrying<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await read();
    } catch (error) {
      if (attempt >= 50) throw error;
      await sleep(100);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
