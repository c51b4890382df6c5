/**
 * The real `or3-sync` binary as a child process: started in dev-auth mode on
 * an ephemeral loopback port, killed with SIGKILL and restarted on the same
 * database (its port then changes), and its `gc` command run beside it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

/** The binary: `OR3_SYNC_BIN`, else the workspace's debug build. */
export function serverBinary(): string {
  const bin = process.env.OR3_SYNC_BIN ?? resolve(repoRoot, 'target/debug/or3-sync');
  if (!existsSync(bin)) {
    throw new Error(`or3-sync binary not found at ${bin}. Build it (cargo build -p or3-sync) or set OR3_SYNC_BIN.`);
  }
  return bin;
}

/** Runs the binary with `args` and returns its stdout; rejects with its stderr on failure. */
export function runBinary(args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolveRun, reject) => {
    execFile(serverBinary(), args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`or3-sync ${args.join(' ')} failed: ${error.message}\n${stderr}`));
      else resolveRun(stdout);
    });
  });
}

/** True when `serve --database` takes a `postgres://` URL (the Postgres store is in this build). */
export async function binarySupportsPostgres(): Promise<boolean> {
  const help = await runBinary(['serve', '--help']);
  return /postgres(ql)?:\/\//i.test(help);
}

/** One workspace's line of `or3-sync gc` output. */
export interface GcReport {
  workspace_id: string;
  log_entries_purged: number;
  op_ids_purged: number;
  tombstone_payloads_purged: number;
  oldest_retained_version: number;
  log_length: number;
  tombstones: number;
  [field: string]: unknown;
}

/** Runs `or3-sync gc` on `database`, judging ages as of `asOfMs`. */
export async function runGc(database: string, asOfMs: number, extraArgs: string[] = []): Promise<GcReport[]> {
  const out = await runBinary(['gc', '--database', database, '--as-of-ms', String(Math.round(asOfMs)), ...extraArgs]);
  return out
    .split('\n')
    .filter((line) => line.trim().startsWith('{'))
    .map((line) => JSON.parse(line) as GcReport);
}

export interface GatewayOptions {
  /** `sqlite://<file>` or a `postgres://` URL. */
  database: string;
  /** More `serve` flags. */
  extraArgs?: string[];
  /** Working directory of the server: in dev-auth mode on Postgres its key file goes there. */
  cwd?: string;
}

/**
 * Each gateway's 'close': its exit and the end of its stdout and stderr. A
 * stop that awaited only 'exit' left the pipes open for a moment, so a run
 * that ended right after listed them as leftover handles.
 */
const closedChildren = new WeakMap<ChildProcess, Promise<unknown>>();
function closedOf(child: ChildProcess): Promise<unknown> {
  return closedChildren.get(child) ?? Promise.resolve();
}

/** Every gateway started by this process, killed if the process exits first. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** A running (or killed, then restarted) gateway. */
export class GatewayProcess {
  private child: ChildProcess | null = null;
  private currentPort: number | null = null;
  private log = '';
  private readonly options: GatewayOptions;

  private constructor(options: GatewayOptions) {
    this.options = options;
  }

  /** Starts the gateway and waits until it listens. */
  static async start(options: GatewayOptions): Promise<GatewayProcess> {
    const gateway = new GatewayProcess(options);
    await gateway.launch();
    return gateway;
  }

  get database(): string {
    return this.options.database;
  }

  /** The current port; null while the server is down. */
  get port(): number | null {
    return this.currentPort;
  }

  /** The server's own origin (not the proxy's). */
  get baseUrl(): string {
    if (this.currentPort === null) throw new Error('the gateway is down');
    return `http://127.0.0.1:${this.currentPort}`;
  }

  /** The last lines the server logged, for failure reports. */
  logTail(chars = 4000): string {
    return this.log.slice(-chars);
  }

  /** SIGKILL: no shutdown, no flush; whatever was not committed is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    this.currentPort = null;
    const closed = closedOf(child);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await closed;
    live.delete(child);
  }

  /**
   * SIGSTOP: the process freezes with its sockets open, as a node stalled by
   * its host would; `resume` (SIGCONT) lets it go on.
   */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Starts again on the same database after a kill. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** Graceful stop (SIGTERM, then SIGKILL after 3 s). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    this.currentPort = null;
    const closed = closedOf(child);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await closed;
      clearTimeout(timer);
    }
    await closed;
    live.delete(child);
  }

  /** A dev token for `userId` (dev-auth mode; tokens survive restarts, the key lives beside the database). */
  async token(userId: string): Promise<string> {
    const response = await fetch(`${this.baseUrl}/v1/dev/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: userId }),
    });
    if (!response.ok) throw new Error(`dev token: HTTP ${response.status} ${await response.text()}`);
    return ((await response.json()) as { token: string }).token;
  }

  /** An authorized request straight to the server. */
  async api<T>(
    token: string,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: T }> {
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
  }

  private async launch(): Promise<void> {
    const args = ['serve', '--listen', '127.0.0.1:0', '--database', this.options.database, ...(this.options.extraArgs ?? [])];
    const child = spawn(serverBinary(), args, {
      cwd: this.options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' },
    });
    live.add(child);
    closedChildren.set(child, new Promise((done) => child.once('close', done)));
    this.log += `\n--- start ${new Date().toISOString()}: or3-sync ${args.join(' ')}\n`;
    const port = await new Promise<number>((resolvePort, reject) => {
      let seen = '';
      const timer = setTimeout(() => fail(new Error(`or3-sync did not start within 20 s:\n${seen}`)), 20_000);
      const onData = (chunk: Buffer) => {
        const text = chunk.toString();
        seen += text;
        this.appendLog(text);
        const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(seen);
        if (match) {
          clearTimeout(timer);
          child.removeListener('exit', onExit);
          resolvePort(Number(match[1]));
        }
      };
      const onExit = (code: number | null) => fail(new Error(`or3-sync exited with ${code} before listening:\n${seen}`));
      const fail = (error: Error) => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        live.delete(child);
        reject(error);
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', onExit);
      child.once('error', fail);
    });
    this.child = child;
    this.currentPort = port;
  }

  private appendLog(text: string): void {
    this.log = (this.log + text).slice(-64_000);
  }
}
