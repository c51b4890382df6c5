/**
 * Browser entry of the Chromium closing test: engines closed in each state
 * (never started, following another tab's leader, mid-run, twice), each with
 * a write the app did not await before closing.
 */
import { openWorkspace } from '../../src/attach.js';
import type { SyncEngine } from '../../src/engine.js';
import { GatewayProvider } from '../../src/gateway/gateway-provider.js';

declare global {
  interface Window {
    closeInEveryState(baseUrl: string, token: string, workspaceId: string): Promise<string[]>;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Opens the workspace; every request waits `delayMs` first, so a run is still in flight when the test closes. */
function open(baseUrl: string, token: string, workspaceId: string, delayMs = 0): Promise<SyncEngine> {
  const provider = new GatewayProvider({
    baseUrl,
    getToken: async () => token,
    fetch: async (input, init) => {
      await sleep(delayMs);
      return fetch(input, init);
    },
  });
  return openWorkspace({ workspaceId, provider, schema: { threads: 'id' } });
}

/** A write the app does not await: it commits after close() began. */
function unawaitedWrite(engine: SyncEngine, id: string): Promise<unknown> {
  return engine.db
    .table('threads')
    .put({ id, title: id })
    .catch(() => null);
}

window.closeInEveryState = async (baseUrl, token, workspaceId) => {
  const steps: string[] = [];
  // Never started.
  const idle = await open(baseUrl, token, workspaceId);
  const idleWrite = unawaitedWrite(idle, 'never-started');
  await idle.close();
  await idleWrite;
  steps.push('never started');
  // A leader and a tab that waits for the lock (two engines of one database in one page share the lock).
  const leader = await open(baseUrl, token, workspaceId);
  const follower = await open(baseUrl, token, workspaceId);
  leader.start();
  follower.start();
  // Leadership comes through the Web Lock, asynchronously: wait for it (a loaded machine takes longer than a fixed pause).
  for (const deadline = Date.now() + 10_000; !leader.isLeader && Date.now() < deadline; ) await sleep(10);
  const followerWrite = unawaitedWrite(follower, 'follower');
  await follower.close();
  await followerWrite;
  steps.push(`follower (leader: ${leader.isLeader}, follower led: ${follower.isLeader})`);
  // Mid-run: every request takes 300 ms.
  await leader.close();
  const running = await open(baseUrl, token, workspaceId, 300);
  running.start();
  await sleep(100);
  const runningWrite = unawaitedWrite(running, 'mid-run');
  await running.close();
  await runningWrite;
  steps.push('mid-run');
  // Twice, and stop() after close().
  await running.close();
  await running.stop();
  steps.push('closed twice');
  // Late timers and answers of the closed engines.
  await sleep(800);
  return steps;
};
