/**
 * The server-side faults of a run, one at a time, and what must follow each:
 * a node killed (`kill -9`, in a cluster right after a push was sent to it)
 * and restarted; in a cluster also a node's listen connection terminated, Postgres
 * restarted, a node paused past its clients' deadlines. When a fault is
 * over, a probe records the head and checks that every device online
 * throughout reaches it by its own loops (the realtime stream, or its
 * polling fallback) within `STREAM_CATCH_UP_BOUND_MS`, with no sync asked
 * for: a commit whose announcement a node missed must not leave its
 * subscribers behind.
 */
import { CLUSTER_FAULTS, type Cluster, type ClusterFault } from './cluster.js';
import type { Violation } from './invariants.js';
import type { Prng } from './prng.js';
import type { SimulatedDevice } from './simulated-device.js';

/**
 * How long after a fault is over (its node back, its listen connection open
 * again, Postgres up) every device may take to reach the head of that
 * moment: the listener's 5 s sweep (`pg_bus.rs`, the last repair of a missed
 * announcement; a restarted node's `started` announcement and a returning
 * listen connection repair at once), plus up to 10 s on the client's side on
 * a loaded 2-core machine (the harness's reconnect backoff of at most 0.5 s,
 * a failed pull retried with backoff, a rescan of an expired cursor).
 */
export const STREAM_CATCH_UP_BOUND_MS = 15_000;

/** The client deadline of a cluster run's devices, shorter than a pause so that it fires. */
export const CLUSTER_REQUEST_TIMEOUT_MS = 2000;

/** What the driver needs of a device: whether it stayed online, and its cursor and outbox. */
export type WatchedDevice = Pick<SimulatedDevice, 'name' | 'online' | 'tally' | 'stats' | 'projectId' | 'diagnose'>;

export interface FaultDriverOptions {
  cluster: Pick<Cluster, 'nodes' | 'nextPushTo' | 'cutListen' | 'restartPostgres' | 'pause'>;
  devices: WatchedDevice[];
  /** Which faults the run may draw (a single node: only `kill_node`). */
  kinds: readonly ClusterFault[];
  prng: Prng;
  violations: Violation[];
  note: (line: string) => void;
  /**
   * The version a device of `projectId`'s scope must reach, read from a live node: the
   * workspace's head, or for a project the last version in its scope (a subscriber of one
   * project is sent nothing for a commit outside it, so its cursor moves on only with the
   * next commit it is sent, or a pull).
   */
  head: (projectId: string | null) => Promise<number>;
  /** The catch-up bound (default `STREAM_CATCH_UP_BOUND_MS`). */
  catchUpBoundMs?: number;
}

/** What the faults did, for reports. */
export interface FaultCounts {
  kill_node: number;
  cut_listen: number;
  restart_postgres: number;
  pause_node: number;
  /** Slowest catch-up of a device after a fault, per kind (ms). */
  slowestCatchUpMs: Partial<Record<ClusterFault | 'faults_stop', number>>;
}

export class FaultDriver {
  readonly counts: FaultCounts = { kill_node: 0, cut_listen: 0, restart_postgres: 0, pause_node: 0, slowestCatchUpMs: {} };
  private readonly options: FaultDriverOptions;
  private current: Promise<void> | null = null;
  /** GC passes so far: one as of 400 days purges the log under a catch-up, which then waits on a rescan race, not on announcements. */
  private gcPasses = 0;
  private readonly probes: Promise<void>[] = [];

  constructor(options: FaultDriverOptions) {
    this.options = options;
  }

  /** True while a fault is under way (the next one waits for it to end). */
  get busy(): boolean {
    return this.current !== null;
  }

  /** Starts `kind` on `node` unless a fault is under way; `ms` is its length (down or paused). */
  start(kind: ClusterFault, node: number, ms: number): void {
    if (this.current || !this.options.kinds.includes(kind)) return;
    this.counts[kind] += 1;
    const run = this.run(kind, node, ms)
      .then(() => this.probe(kind))
      .catch((error: unknown) => {
        this.options.violations.push({ rule: ruleOf(kind), detail: String(error) });
        this.options.note(`${kind} FAILED: ${String(error)}`);
      })
      .finally(() => (this.current = null));
    this.current = run;
  }

  /** Draws this step's fault (or none) from the seed and starts it. */
  maybeStart(chance: number): void {
    const { prng, cluster } = this.options;
    const now = prng.chance(chance);
    const kind = prng.pick([...CLUSTER_FAULTS]);
    const node = prng.int(cluster.nodes.length);
    const ms = kind === 'pause_node' ? prng.between(CLUSTER_REQUEST_TIMEOUT_MS + 500, 4000) : prng.between(50, 1500);
    if (now) this.start(kind, node, ms);
  }

  /** A GC pass ran: catch-up checks under way no longer measure the stream, and are dropped. */
  noteGc(): void {
    this.gcPasses += 1;
  }

  /** Waits for the fault under way and every probe; then, with no sync asked for, for every device to reach the head. */
  async settle(): Promise<void> {
    while (this.current) await this.current;
    await Promise.all(this.probes);
    await this.probe('faults_stop', true);
  }

  private async run(kind: ClusterFault, node: number, ms: number): Promise<void> {
    const { cluster, note } = this.options;
    switch (kind) {
      case 'kill_node': {
        if (cluster.nodes.length > 1) await cluster.nextPushTo(node, 1000);
        await cluster.nodes[node]!.kill();
        note(`kill -9 node ${node}; restart in ${ms} ms`);
        await sleep(ms);
        await cluster.nodes[node]!.restart();
        note(`node ${node} restarted on port ${cluster.nodes[node]!.port}`);
        return;
      }
      case 'cut_listen': {
        const back = await cluster.cutListen(node);
        note(`node ${node}'s listen connection terminated; back after ${back} ms`);
        return;
      }
      case 'restart_postgres': {
        note('restart Postgres (fast shutdown)');
        const back = await cluster.restartPostgres();
        note(`Postgres back; every node listening again after ${back} ms`);
        return;
      }
      case 'pause_node':
        note(`SIGSTOP node ${node} for ${ms} ms`);
        await cluster.pause(node, ms);
        note(`SIGCONT node ${node}`);
        return;
    }
  }

  /**
   * Records the head now and checks in the background (or, with `wait`,
   * before returning) that every device online all along reaches it within
   * the bound; at faults stop, also with an empty outbox.
   */
  private async probe(after: ClusterFault | 'faults_stop', wait = false): Promise<void> {
    const { devices, violations, note } = this.options;
    const bound = this.options.catchUpBoundMs ?? STREAM_CATCH_UP_BOUND_MS;
    const targets = new Map<string | null, number>();
    for (const projectId of new Set(devices.map((d) => d.projectId))) targets.set(projectId, await this.options.head(projectId));
    const started = Date.now();
    const gcPasses = this.gcPasses;
    // Held to the bound: the devices online now that stay online all along.
    const watched = new Map(devices.filter((d) => d.online).map((d) => [d, d.tally.offlinePeriods]));
    const check = async () => {
      let behind: string[] = [];
      while (Date.now() - started <= bound) {
        behind = [];
        for (const [device, offlinePeriods] of watched) {
          if (!device.online || device.tally.offlinePeriods !== offlinePeriods) {
            watched.delete(device);
            continue;
          }
          const stats = await device.stats().catch(() => null);
          const reached = stats !== null && (stats.cursor ?? 0) >= targets.get(device.projectId)! && (after !== 'faults_stop' || stats.pending === 0);
          if (!reached) behind.push(`${device.name} at ${stats?.cursor ?? '?'} of ${targets.get(device.projectId)}${stats ? `, ${stats.pending} pending` : ''}`);
        }
        if (behind.length === 0) {
          const ms = Date.now() - started;
          this.counts.slowestCatchUpMs[after] = Math.max(this.counts.slowestCatchUpMs[after] ?? 0, ms);
          return;
        }
        await sleep(100);
      }
      if (this.gcPasses !== gcPasses) {
        note(`after ${after}: a GC pass ran meanwhile; the catch-up is not held to the bound`);
        return;
      }
      violations.push({
        rule: 'realtime_stream_catches_up_within_bound',
        detail: `after ${after}: not at the head of ${after === 'faults_stop' ? 'faults stop' : 'the fault'} within ${bound} ms: ${behind.join('; ')}`,
      });
      note(`after ${after}: devices behind: ${behind.join('; ')}`);
      for (const device of watched.keys()) note(`  ${device.name}: ${await device.diagnose().catch((e: unknown) => String(e))}`);
    };
    if (wait) await check();
    else this.probes.push(check());
  }
}

/** The rule a fault that could not be carried out breaks. */
function ruleOf(kind: ClusterFault): string {
  switch (kind) {
    case 'kill_node':
      return 'server_restarts_on_its_database';
    case 'cut_listen':
    case 'restart_postgres':
      return 'node_listens_again_by_itself';
    case 'pause_node':
      return 'run_completes';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
