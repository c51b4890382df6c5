/**
 * Starts the real `or3-sync` binary for the end-to-end tests: dev-auth mode,
 * a fresh SQLite database, an ephemeral port, and the demo's build as its
 * static site. Also a small HTTP client that reads the server's state, the
 * tests' oracle for what actually synced.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const demoDir = fileURLToPath(new URL('../..', import.meta.url));
const repoDir = resolve(demoDir, '../..');

/** The binary: `OR3_SYNC_BIN`, else the workspace's debug build. */
export function serverBinary(): string {
  const bin = process.env.OR3_SYNC_BIN ?? resolve(repoDir, 'target/debug/or3-sync');
  if (!existsSync(bin)) {
    throw new Error(`or3-sync binary not found at ${bin}: run cargo build -p or3-sync, or set OR3_SYNC_BIN`);
  }
  return bin;
}

/** One record of the server's snapshot. */
export interface ServerRecord {
  table_name: string;
  pk: string;
  deleted: boolean;
  payload: Record<string, unknown> | null;
  clock: number;
  hlc: string;
  op_id: string;
  server_version: number;
}

export interface DemoServer {
  baseUrl: string;
  /** A dev token for `userId` (cached). */
  token(userId: string): Promise<string>;
  /** Creates a workspace owned by `owner`; returns its id. */
  createWorkspace(name: string, owner: string): Promise<string>;
  /** Every record of a workspace, tombstones included, read as `userId`. */
  snapshot(workspaceId: string, userId: string): Promise<ServerRecord[]>;
  /** Everything the server logged so far (stderr and stdout), for failure reports. */
  log(): string;
  stop(): Promise<void>;
}

/** Starts the server on a fresh database, serving `staticDir` (the demo's build by default; it may still be empty). */
export async function startServer(staticDir = join(demoDir, 'dist')): Promise<DemoServer> {
  if (staticDir === join(demoDir, 'dist') && !existsSync(join(staticDir, 'index.html'))) {
    throw new Error(`no demo build at ${staticDir}: run npm run build -w packages/demo (npm test does)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'or3-demo-e2e-'));
  const child = spawn(
    serverBinary(),
    ['serve', '--listen', '127.0.0.1:0', '--database', `sqlite://${dir}/e2e.db`, '--static-dir', staticDir],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' } },
  );
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-200_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const baseUrl = await waitForListening(child, () => output);

  const tokens = new Map<string, string>();
  const token = async (userId: string) => {
    const known = tokens.get(userId);
    if (known) return known;
    const response = await fetch(`${baseUrl}/v1/dev/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: userId }),
    });
    if (!response.ok) throw new Error(`dev token: HTTP ${response.status}`);
    const value = ((await response.json()) as { token: string }).token;
    tokens.set(userId, value);
    return value;
  };

  return {
    baseUrl,
    token,
    async createWorkspace(name, owner) {
      const response = await fetch(`${baseUrl}/v1/workspaces`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await token(owner)}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name }),
      });
      if (!response.ok) throw new Error(`create workspace: HTTP ${response.status} ${await response.text()}`);
      return ((await response.json()) as { workspace_id: string }).workspace_id;
    },
    async snapshot(workspaceId, userId) {
      const records: ServerRecord[] = [];
      let pageToken: string | null = null;
      do {
        const url = new URL(`${baseUrl}/v1/workspaces/${workspaceId}/snapshot`);
        if (pageToken) url.searchParams.set('page_token', pageToken);
        const response = await fetch(url, { headers: { authorization: `Bearer ${await token(userId)}` } });
        if (!response.ok) throw new Error(`snapshot: HTTP ${response.status} ${await response.text()}`);
        const page = (await response.json()) as { items: ServerRecord[]; next_page_token: string | null };
        records.push(...page.items);
        pageToken = page.next_page_token;
      } while (pageToken);
      return records;
    },
    log: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((done) => child.once('exit', done));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((done) => setTimeout(done, 5000))]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function waitForListening(child: ChildProcess, output: () => string): Promise<string> {
  return new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => fail(new Error(`or3-sync did not start within 30 s:\n${output()}`)), 30_000);
    const poll = setInterval(() => {
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output());
      if (!match) return;
      cleanup();
      resolveUrl(match[1]!);
    }, 20);
    const onExit = (code: number | null) => fail(new Error(`or3-sync exited with ${code} before listening:\n${output()}`));
    function cleanup() {
      clearTimeout(timer);
      clearInterval(poll);
      child.off('exit', onExit);
    }
    function fail(error: Error) {
      cleanup();
      child.kill('SIGKILL');
      reject(error);
    }
    child.once('exit', onExit);
    child.once('error', fail);
  });
}
