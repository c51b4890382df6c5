/**
 * How the leader paces its pushes (PROTOCOL.md section 6, "Push"):
 * one push in flight at a time, each carrying every write captured while the
 * last was on its way, so a streaming reply that rewrites a message every few
 * milliseconds costs the server a push per round trip, not one per write.
 * A run a write starts ends with its push while the subscription is open.
 * The scheduling rule itself (at once when nothing runs) is pinned in
 * `run-scheduler.test.ts`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SyncEngine } from '../src/engine.js';
import { makeDevice } from './support/devices.js';
import { applied, ScriptedProvider } from './support/scripted-provider.js';

const opened: SyncEngine[] = [];
afterEach(async () => {
  for (const engine of opened.splice(0)) await engine.close();
});

/** How long the scripted server takes to answer a push. */
const PUSH_MS = 80;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('push pacing', () => {
  it('a streaming reply that rewrites a message every 2 ms is pushed in a few batches, one push in flight at a time', async () => {
    const provider = new ScriptedProvider();
    let inFlight = 0;
    let mostInFlight = 0;
    let version = 0;
    provider.onPush = async (ops) => {
      inFlight += 1;
      mostInFlight = Math.max(mostInFlight, inFlight);
      await sleep(PUSH_MS);
      inFlight -= 1;
      return { results: ops.map((op) => applied(op, ++version)), server_version: version };
    };
    const engine = await makeDevice('ws-stream', provider).open();
    opened.push(engine);
    engine.start();
    await waitFor(async () => provider.subscriptions.length === 1);

    const writes = 60;
    await engine.db.table('threads').put({ id: 't1', title: 'chat' });
    await waitFor(async () => (await engine.pendingCount()) === 0);
    const pushesBefore = provider.pushes.length;
    const started = Date.now();
    for (let n = 1; n <= writes; n++) {
      await engine.db.table('messages').put({ id: 'reply', thread_id: 't1', index: 0, content: 'token '.repeat(n) });
      await sleep(2);
    }
    const streamedMs = Date.now() - started;
    await waitFor(async () => (await engine.pendingCount()) === 0);

    const pushed = provider.pushes.flat().filter((op) => op.pk === 'reply');
    expect(pushed).toHaveLength(writes);
    expect(pushed.at(-1)!.payload).toMatchObject({ content: 'token '.repeat(writes) });
    expect(mostInFlight).toBe(1);
    // Back-pressure: no more pushes than round trips fit in the stream (plus the last one after it),
    // however fast the writes come; so each push carries every write made while the last was away.
    const pushes = provider.pushes.length - pushesBefore;
    expect(pushes).toBeLessThanOrEqual(Math.ceil(streamedMs / PUSH_MS) + 1);
    expect(pushes).toBeLessThan(writes / 2);
  });

  it('a write pushed while the subscription is open is not followed by a pull (the subscription delivers)', async () => {
    const provider = new ScriptedProvider();
    const engine = await makeDevice('ws-push-only', provider).open();
    opened.push(engine);
    engine.start();
    await waitFor(async () => provider.subscriptions.length === 1);
    const pulls = provider.pulls.length;
    await engine.db.table('threads').put({ id: 'subscribed', title: 'pushed alone' });
    await waitFor(async () => (await engine.pendingCount()) === 0);
    await engine.db.table('threads').put({ id: 'subscribed-2', title: 'pushed alone too' });
    await waitFor(async () => (await engine.pendingCount()) === 0);
    expect(provider.pushes.flat().map((op) => op.pk)).toEqual(['subscribed', 'subscribed-2']);
    expect(provider.pulls.length).toBe(pulls);
  });
});
