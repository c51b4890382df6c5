/**
 * Several `or3-sync serve` nodes on one Postgres schema (they tell each
 * other of commits with `LISTEN/NOTIFY`), behind the fault proxy as behind a
 * load balancer, and the faults of a cluster: a node killed mid-push and
 * restarted, a node's listen connection terminated from Postgres, Postgres
 * itself restarted, a node paused (SIGSTOP) and resumed.
 *
 * Each node connects with its own `application_name` (`<tag>-n<i>`, its
 * listen connection `<tag>-n<i>-listen`), so the harness finds that one
 * backend in `pg_stat_activity` and no other process's.
 */
import { execFile } from 'node:child_process';
import { GatewayProcess } from './gateway-process.js';
import type { Prng } from './prng.js';

/** The faults a cluster run draws from. */
export type ClusterFault = 'kill_node' | 'cut_listen' | 'restart_postgres' | 'pause_node';
export const CLUSTER_FAULTS: readonly ClusterFault[] = ['kill_node', 'cut_listen', 'restart_postgres', 'pause_node'];

/** How long a node's listen connection may take to come back after it was cut or Postgres restarted. */
export const LISTEN_RECONNECT_BOUND_MS = 15_000;

export interface ClusterOptions {
  /** `sqlite://<file>` (one node), or the Postgres URL with the seed's `?schema=`. */
  database: string;
  /** The Postgres URL the harness administers with (`psql`); absent on SQLite. */
  adminUrl?: string;
  nodes: number;
  /** Distinguishes this run's connections from any other's in `pg_stat_activity`. */
  tag: string;
  extraArgs: string[];
  cwd: string;
  /** The load balancer's draws. */
  prng: Prng;
}

export class Cluster {
  readonly nodes: GatewayProcess[] = [];
  /** Lanes moved to another node (on a new realtime connection, a request, or their node's death). */
  laneMoves = 0;
  private readonly options: ClusterOptions;
  private readonly paused = new Set<number>();
  private readonly httpNode = new Map<string, number>();
  private readonly wsNode = new Map<string, number>();
  private readonly streams = new Map<string, Prng>();
  private pushWaiters: { node: number; resolve: () => void }[] = [];

  private constructor(options: ClusterOptions) {
    this.options = options;
  }

  /** Starts the nodes one after the other (the first creates the schema and the dev-auth key). */
  static async start(options: ClusterOptions): Promise<Cluster> {
    const cluster = new Cluster(options);
    for (let i = 0; i < options.nodes; i++) {
      let database = options.database;
      if (options.adminUrl) {
        const named = new URL(database);
        named.searchParams.set('application_name', cluster.applicationName(i));
        database = named.toString();
      }
      cluster.nodes.push(await GatewayProcess.start({ database, extraArgs: options.extraArgs, cwd: options.cwd }));
    }
    return cluster;
  }

  /** A node that is up and not paused, for the harness's own requests. */
  get live(): GatewayProcess {
    const node = this.nodes.find((n, i) => n.port !== null && !this.paused.has(i));
    if (!node) throw new Error('no live node');
    return node;
  }

  /**
   * The load balancer: a lane's requests stay on its node until it dies, or
   * now and then move (as a balancer without affinity sends them); each new
   * realtime connection is placed afresh, so a device's subscription and its
   * pushes often land on different nodes. A paused node still looks up.
   */
  route(lane: string, kind: 'http' | 'ws', path: string): number | null {
    const up = this.nodes.flatMap((n, i) => (n.port === null ? [] : [i]));
    if (up.length === 0) return null;
    const draws = this.stream(`${kind}:${lane}`);
    const redraw = draws.chance(kind === 'ws' ? 1 : 0.2);
    const choice = draws.pick(up);
    const placed = kind === 'ws' ? this.wsNode : this.httpNode;
    const current = placed.get(lane);
    const node = current !== undefined && up.includes(current) && !redraw ? current : choice;
    if (current !== undefined && node !== current) this.laneMoves += 1;
    placed.set(lane, node);
    if (kind === 'http' && path.endsWith('/push')) {
      for (const waiter of this.pushWaiters.filter((w) => w.node === node)) waiter.resolve();
      this.pushWaiters = this.pushWaiters.filter((w) => w.node !== node);
    }
    return this.nodes[node]!.port;
  }

  /** Resolves when the next push is sent to `node`, or after `timeoutMs`. */
  nextPushTo(node: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.pushWaiters.push({ node, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  /** SIGSTOP for `ms`, then SIGCONT (always). */
  async pause(node: number, ms: number): Promise<void> {
    this.paused.add(node);
    this.nodes[node]!.pause();
    try {
      await sleep(ms);
    } finally {
      this.nodes[node]!.resume();
      this.paused.delete(node);
    }
  }

  /**
   * Terminates `node`'s listen connection from Postgres; resolves with how
   * long the node took to open a new one.
   */
  async cutListen(node: number): Promise<number> {
    const name = `${this.applicationName(node)}-listen`;
    // A node restarted a moment ago may not listen yet.
    await this.listening([node]);
    const killed = await this.psql(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '${name}'`);
    if (killed.trim() !== '1') throw new Error(`expected one listen connection named ${name}, terminated ${killed.trim()}`);
    const started = Date.now();
    await this.listening([node]);
    return Date.now() - started;
  }

  /**
   * Restarts Postgres (fast shutdown: every connection is dropped), and makes
   * sure it runs again whatever happened; resolves with how long every node
   * took to listen again, counted from Postgres being back.
   */
  async restartPostgres(): Promise<number> {
    const [version, name] = await postgresCluster(this.admin());
    try {
      await run('pg_ctlcluster', ['--skip-systemctl-redirect', version, name, 'restart', '-m', 'fast']);
    } finally {
      const status = await run('pg_lsclusters', ['--no-header', version, name]).catch(() => '');
      if (!/\bonline\b/.test(status)) await run('pg_ctlcluster', ['--skip-systemctl-redirect', version, name, 'start']);
    }
    const started = Date.now();
    await this.listening(this.nodes.map((_, i) => i));
    return Date.now() - started;
  }

  async stop(): Promise<void> {
    for (const node of this.nodes) await node.stop();
  }

  /** The last lines of every node's log. */
  logTail(): string {
    return this.nodes.map((n, i) => `--- node ${i}\n${n.logTail(1500)}`).join('\n');
  }

  private applicationName(node: number): string {
    return `${this.options.tag}-n${node}`;
  }

  /** Waits until each of `nodes` has its listen connection open. */
  private async listening(nodes: number[]): Promise<void> {
    const names = nodes.map((i) => `${this.applicationName(i)}-listen`);
    const deadline = Date.now() + LISTEN_RECONNECT_BOUND_MS;
    for (;;) {
      const open = await this.psql(
        `SELECT application_name FROM pg_stat_activity WHERE application_name IN (${names.map((n) => `'${n}'`).join(',')})`,
      ).catch(() => '');
      const missing = names.filter((n) => !open.split('\n').includes(n));
      if (missing.length === 0) return;
      if (Date.now() > deadline) throw new Error(`no listen connection within ${LISTEN_RECONNECT_BOUND_MS} ms: ${missing.join(', ')}`);
      await sleep(50);
    }
  }

  private stream(key: string): Prng {
    let s = this.streams.get(key);
    if (!s) this.streams.set(key, (s = this.options.prng.fork(key)));
    return s;
  }

  /** Runs `sql`, tried again for up to 10 s while Postgres restarts (here, or in another run on the machine). */
  private async psql(sql: string): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await run('psql', [this.admin(), '-At', '-c', sql]);
      } catch (error) {
        if (attempt >= 40) throw error;
        await sleep(250);
      }
    }
  }

  private admin(): string {
    if (!this.options.adminUrl) throw new Error('this fault needs Postgres');
    return this.options.adminUrl;
  }
}

/** `[version, name]` of the local Postgres cluster on the URL's port (`OR3_FAULTS_PG_CLUSTER="15 main"` overrides). */
async function postgresCluster(url: string): Promise<[string, string]> {
  const configured = process.env.OR3_FAULTS_PG_CLUSTER?.split(/\s+/);
  if (configured?.length === 2) return [configured[0]!, configured[1]!];
  const port = new URL(url).port || '5432';
  const lines = (await run('pg_lsclusters', ['--no-header'])).split('\n').map((l) => l.trim().split(/\s+/));
  const found = lines.find((fields) => fields[2] === port);
  if (!found) throw new Error(`no local Postgres cluster on port ${port} (pg_lsclusters); set OR3_FAULTS_PG_CLUSTER`);
  return [found[0]!, found[1]!];
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')}: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
