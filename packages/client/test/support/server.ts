/**
 * Starts the real `or3-sync` gateway binary on an ephemeral port, in dev-auth
 * mode with a fresh SQLite database, for integration tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = fileURLToPath(new URL('../..', import.meta.url));

/** The binary: `OR3_SYNC_BIN`, else the workspace's debug build. */
export function serverBinary(): string {
  const bin = process.env.OR3_SYNC_BIN ?? resolve(packageDir, '../../target/debug/or3-sync');
  if (!existsSync(bin)) {
    throw new Error(
      `or3-sync server binary not found at ${bin}. Build it first (cargo build -p or3-sync) or set OR3_SYNC_BIN.`,
    );
  }
  return bin;
}

export interface TestServer {
  baseUrl: string;
  /** A dev token for `userId`. */
  token(userId: string): Promise<string>;
  /** Creates a workspace owned by `ownerToken`; returns its id. */
  createWorkspace(ownerToken: string, name?: string): Promise<string>;
  addMember(ownerToken: string, workspaceId: string, userId: string, role: 'owner' | 'editor' | 'viewer'): Promise<void>;
  removeMember(ownerToken: string, workspaceId: string, userId: string): Promise<void>;
  /**
   * Stops the process (SIGTERM: subscribers get `shutting_down` and a clean
   * close) and starts it again on the same port and SQLite file. `whileDown`
   * runs in between; `args` replaces the extra arguments (e.g. another `--tables`).
   */
  restart(whileDown?: () => Promise<void>, args?: string[]): Promise<void>;
  /** Kills the process (SIGKILL: no goodbye to anyone), leaving its files. */
  kill(): Promise<void>;
  /** A raw authorized request, for checks the client API does not expose. */
  api<T>(token: string, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T }>;
  stop(): Promise<void>;
}

export async function startServer(extraArgs: string[] = []): Promise<TestServer> {
  const bin = serverBinary();
  const dir = mkdtempSync(join(tmpdir(), 'or3-client-it-'));
  let args = extraArgs;
  const launch = (listen: string) =>
    spawn(bin, ['serve', '--listen', listen, '--database', `sqlite://${dir}/t.db`, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' },
    });
  let child = launch('127.0.0.1:0');
  const baseUrl = await waitForListening(child);
  const terminate = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((done) => setTimeout(done, 3000))]);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  const api = async <T>(token: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
  };
  return {
    baseUrl,
    api,
    async token(userId) {
      const response = await fetch(`${baseUrl}/v1/dev/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user_id: userId }),
      });
      if (!response.ok) throw new Error(`dev token: HTTP ${response.status} ${await response.text()}`);
      return ((await response.json()) as { token: string }).token;
    },
    async createWorkspace(ownerToken, name = 'w') {
      const { status, body } = await api<{ workspace_id: string }>(ownerToken, 'POST', '/v1/workspaces', { name });
      if (status !== 201) throw new Error(`create workspace: HTTP ${status} ${JSON.stringify(body)}`);
      return body.workspace_id;
    },
    async addMember(ownerToken, workspaceId, userId, role) {
      const { status, body } = await api(ownerToken, 'PUT', `/v1/workspaces/${workspaceId}/members/${userId}`, { role });
      if (status >= 300) throw new Error(`add member: HTTP ${status} ${JSON.stringify(body)}`);
    },
    async removeMember(ownerToken, workspaceId, userId) {
      const { status, body } = await api(ownerToken, 'DELETE', `/v1/workspaces/${workspaceId}/members/${userId}`);
      if (status >= 300) throw new Error(`remove member: HTTP ${status} ${JSON.stringify(body)}`);
    },
    async restart(whileDown, newArgs) {
      await terminate();
      await whileDown?.();
      if (newArgs) args = newArgs;
      child = launch(new URL(baseUrl).host);
      await waitForListening(child);
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      await terminate();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function waitForListening(child: ChildProcess): Promise<string> {
  return new Promise((resolveUrl, reject) => {
    let output = '';
    const timer = setTimeout(() => fail(new Error(`or3-sync did not start within 20 s:\n${output}`)), 20_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        // Keep draining the pipes so the server never blocks on a full one.
        child.stdout?.removeListener('data', onData);
        child.stderr?.removeListener('data', onData);
        child.stdout?.resume();
        child.stderr?.resume();
        resolveUrl(match[1]!);
      }
    };
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => fail(new Error(`or3-sync exited with ${code} before listening:\n${output}`)));
    child.once('error', fail);
  });
}
