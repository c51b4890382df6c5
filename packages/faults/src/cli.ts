/**
 * The long mode: `npm run faults -w packages/faults -- --seeds 1000`.
 *
 *   --seeds N        run seeds from..from+N-1 (default 10)
 *   --from S         first seed (default 1)
 *   --seed S         run one seed (a failure's replay command uses this)
 *   --devices N      simulated devices (default 4)
 *   --steps N        workload steps per seed (default 150)
 *   --budget-s T     start no new seed after T seconds
 *   --postgres URL   run on Postgres (a fresh schema per seed) instead of SQLite
 *   --nodes N        N gateway nodes on the one schema (needs --postgres), with cluster faults
 *   --cluster-faults K,K  the cluster faults to draw (kill_node, cut_listen, restart_postgres, pause_node; default all)
 *   --every-cluster-fault also start each of them once at fixed steps
 *   --verbose        print each seed's counts, not only failures
 *
 * Prints one line per seed, the full report of each failure with the command
 * that replays it, and a summary; exits 1 when any seed failed.
 */
import { CLUSTER_FAULTS, type ClusterFault } from './cluster.js';
import { binarySupportsPostgres } from './gateway-process.js';
import { formatFailure, formatSummaryLine } from './cli-format.js';
import { runSeed, type SeedConfig, type SeedReport } from './run-seed.js';

interface CliOptions {
  seeds: number;
  from: number;
  devices: number;
  steps: number;
  budgetS: number | null;
  postgresUrl: string | null;
  nodes: number;
  clusterFaults: ClusterFault[] | null;
  everyClusterFault: boolean;
  verbose: boolean;
}

function parseArgs(argv: string[]): CliOptions {
  const options: CliOptions = { seeds: 10, from: 1, devices: 4, steps: 150, budgetS: null, postgresUrl: null, nodes: 1, clusterFaults: null, everyClusterFault: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const int = () => {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a non-negative integer`);
      return n;
    };
    switch (flag) {
      case '--seeds':
        options.seeds = int();
        break;
      case '--from':
        options.from = int();
        break;
      case '--seed':
        options.from = int();
        options.seeds = 1;
        options.verbose = true;
        break;
      case '--devices':
        options.devices = Math.max(1, int());
        break;
      case '--steps':
        options.steps = int();
        break;
      case '--budget-s':
        options.budgetS = int();
        break;
      case '--postgres':
        options.postgresUrl = value();
        break;
      case '--nodes':
        options.nodes = Math.max(1, int());
        break;
      case '--cluster-faults': {
        const kinds = value().split(',');
        const unknown = kinds.filter((k) => !CLUSTER_FAULTS.includes(k as ClusterFault));
        if (unknown.length > 0) throw new Error(`--cluster-faults: unknown ${unknown.join(', ')} (known: ${CLUSTER_FAULTS.join(', ')})`);
        options.clusterFaults = kinds as ClusterFault[];
        break;
      }
      case '--every-cluster-fault':
        options.everyClusterFault = true;
        break;
      case '--verbose':
        options.verbose = true;
        break;
      default:
        throw new Error(`unknown flag ${flag}`);
    }
  }
  return options;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (options.nodes > 1 && !options.postgresUrl) throw new Error('--nodes needs --postgres: the nodes share one Postgres schema');
  if (options.postgresUrl && !(await binarySupportsPostgres())) {
    throw new Error('this or3-sync build does not accept postgres:// databases (no Postgres store yet)');
  }
  const started = Date.now();
  const failures: SeedReport[] = [];
  let run = 0;
  for (let seed = options.from; seed < options.from + options.seeds; seed++) {
    if (options.budgetS !== null && Date.now() - started > options.budgetS * 1000) break;
    const config: SeedConfig = { seed, devices: options.devices, steps: options.steps };
    if (options.postgresUrl) config.postgresUrl = options.postgresUrl;
    if (options.nodes > 1) config.nodes = options.nodes;
    if (options.clusterFaults) config.clusterFaults = options.clusterFaults;
    if (options.everyClusterFault) config.everyClusterFault = true;
    const report = await runSeed(config);
    run += 1;
    console.log(formatSummaryLine(report));
    if (!report.ok) {
      failures.push(report);
      console.log(formatFailure(report));
    } else if (options.verbose) {
      console.log(`  devices: ${JSON.stringify(report.devices)}`);
    }
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  console.log(
    `\n${run} seeds (${options.from}..${options.from + run - 1}), ${failures.length} failed, ${seconds} s, ` +
      `${options.devices} devices x ${options.steps} steps, ${options.postgresUrl ? 'postgres' : 'sqlite'}` +
      (options.nodes > 1 ? `, ${options.nodes} nodes` : ''),
  );
  for (const failure of failures) console.log(`  replay: ${failure.replay}`);
  process.exitCode = failures.length > 0 ? 1 : 0;
  reportLeftovers();
  // A long run once stayed alive after its summary, spinning a core (seen after
  // 300 seeds, never after one): whatever a seed left behind must not keep the
  // process running. What was left is printed above, for whoever looks next.
  process.exit();
}

/** Prints the handles still open after every seed closed its engines and servers. */
function reportLeftovers(): void {
  const active = (process as unknown as { _getActiveHandles?: () => object[] })._getActiveHandles?.() ?? [];
  const left = active.flatMap((handle) => {
    const h = handle as {
      constructor?: { name?: string };
      _handle?: { fd?: number };
      pid?: number;
      spawnargs?: string[];
      exitCode?: number | null;
      signalCode?: string | null;
    };
    const name = h.constructor?.name ?? typeof handle;
    // The process's own stdin, stdout and stderr (pipes when the output is piped) are not leftovers.
    if (name === 'WriteStream' || name === 'ReadStream' || name === 'TTY') return [];
    if (name === 'Socket' && typeof h._handle?.fd === 'number' && h._handle.fd <= 2) return [];
    if (name === 'ChildProcess') {
      const state = h.exitCode === null && h.signalCode === null ? 'running' : `exited ${h.exitCode ?? h.signalCode}`;
      return [`ChildProcess(pid ${h.pid}: ${(h.spawnargs ?? []).slice(0, 2).join(' ')}, ${state})`];
    }
    return [name];
  });
  if (left.length > 0) console.log(`  still open after the run: ${left.join(', ')}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 2;
});
