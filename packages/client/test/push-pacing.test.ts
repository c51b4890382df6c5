/**
 * How the leader paces its pushes (PROTOCOL.md section 6, "Push"):
 * one push in flight at a time, each carrying every write captured while the
 * last was on its way, so a streaming reply that rewrites a message every few
 * milliseconds costs the server a push per round trip, not one per write.
 * A run a write starts ends with its push while the subscription is open.
 * The request leaves while the batch's `sent` mark commits, and nothing of
 * the batch is settled before it has.
 * The scheduling rule itself (at once when nothing runs) is pinned in
 * `run-scheduler.test.ts`.
 */
import type { DBCore, Middleware } from 'dexie';
import { IDBDatabase as FakeIDBDatabase, IDBKeyRange } from 'fake-indexeddb';
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

/** One IndexedDB transaction an engine opened: its mode and stores. */
interface OpenedTransaction {
  mode: IDBTransactionMode;
  stores: string[];
}

/** Records every transaction the fake IndexedDB opens until `stop()`; call before the engine opens (Dexie binds `transaction` then). */
function watchTransactions(): { opened: OpenedTransaction[]; stop(): void } {
  const opened: OpenedTransaction[] = [];
  const original = FakeIDBDatabase.prototype.transaction;
  FakeIDBDatabase.prototype.transaction = function (this: InstanceType<typeof FakeIDBDatabase>, ...args: Parameters<typeof original>) {
    const [stores, mode] = args;
    opened.push({ mode: mode ?? 'readonly', stores: [stores].flat() });
    return original.apply(this, args);
  };
  return { opened, stop: () => (FakeIDBDatabase.prototype.transaction = original) };
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

  it('a captured write reaches its push through one IndexedDB transaction: the run\'s start, which takes it from the outbox', async () => {
    const provider = new ScriptedProvider();
    const watch = watchTransactions();
    // No outbox poll (its count) in the window watched.
    const engine = await makeDevice('ws-one-transaction', provider).open({ outboxPollMs: 60_000 }).finally(() => watch.stop());
    opened.push(engine);
    engine.start();
    await waitFor(async () => provider.subscriptions.length === 1);
    await engine.sync();
    let atPush: OpenedTransaction[] | null = null;
    let before = 0;
    provider.onPush = (ops) => {
      atPush ??= watch.opened.slice(before);
      return { results: ops.map((op, i) => applied(op, i + 1)), server_version: ops.length };
    };
    before = watch.opened.length;
    await engine.db.table('threads').put({ id: 'fast', title: 'no wait' });
    await waitFor(async () => atPush !== null);
    expect(provider.pushes.at(-1)!.map((op) => op.pk)).toEqual(['fast']);
    // The capture's own transaction, then the run's start (engine state and the batch, moved to sent).
    expect(atPush).toHaveLength(2);
    expect(atPush![0]!.stores).toContain('threads');
    expect(atPush![1]!.mode).toBe('readwrite');
    expect([...atPush![1]!.stores].sort()).toEqual(['_or3sync_outbox', '_or3sync_state']);
    await waitFor(async () => (await engine.pendingCount()) === 0);
  });

  it('writes captured while a push is on its way go in the next push, taken in the transaction that settles the last', async () => {
    const provider = new ScriptedProvider();
    const watch = watchTransactions();
    const engine = await makeDevice('ws-next-batch', provider).open({ outboxPollMs: 60_000 }).finally(() => watch.stop());
    opened.push(engine);
    engine.start();
    await waitFor(async () => provider.subscriptions.length === 1);
    await engine.sync();
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    let answeredAt = -1;
    let secondAt: OpenedTransaction[] | null = null;
    let version = 0;
    provider.onPush = async (ops) => {
      if (answeredAt < 0) {
        await held;
        answeredAt = watch.opened.length;
      } else {
        secondAt ??= watch.opened.slice(answeredAt);
      }
      return { results: ops.map((op) => applied(op, ++version)), server_version: version };
    };
    await engine.db.table('threads').put({ id: 'first', title: 'on its way' });
    await waitFor(async () => provider.pushes.length > 0 && provider.pushes.at(-1)![0]!.pk === 'first');
    await engine.db.table('threads').put({ id: 'second', title: 'rides the next push' });
    await engine.db.table('threads').put({ id: 'third', title: 'rides it too' });
    release();
    await waitFor(async () => secondAt !== null);
    expect(provider.pushes.slice(-2).map((ops) => ops.map((op) => op.pk))).toEqual([['first'], ['second', 'third']]);
    // Between the answer and the next push: the settling transaction only (no count, no batch of its own).
    expect(secondAt).toHaveLength(1);
    expect(secondAt![0]!.mode).toBe('readwrite');
    expect(secondAt![0]!.stores).toContain('_or3sync_outbox');
    await waitFor(async () => (await engine.pendingCount()) === 0);
  });

  it('a push leaves before its batch\'s sent mark commits, and a batch whose mark failed is not settled by the answer: it goes again', async () => {
    const provider = new ScriptedProvider();
    let failMark = false;
    let markEnded = false;
    // The transaction that marks the batch sent fails, 30 ms after its mark was issued.
    const failingMark: Middleware<DBCore> = {
      stack: 'dbcore',
      name: 'failing-sent-mark',
      create: (down) => ({
        ...down,
        table(name) {
          const table = down.table(name);
          if (name !== '_or3sync_outbox') return table;
          return {
            ...table,
            async mutate(req) {
              if (failMark && req.type === 'put' && req.values.some((op: { sent?: number }) => op.sent === 1)) {
                failMark = false;
                await sleep(30);
                markEnded = true;
                throw new Error('the disk is full');
              }
              return table.mutate(req);
            },
          };
        },
      }),
    };
    const device = makeDevice('ws-mark-fails', provider);
    const engine = await device.open({ dexieOptions: { indexedDB: device.factory, IDBKeyRange, addons: [(db) => void db.use(failingMark)] } });
    opened.push(engine);
    engine.start();
    await waitFor(async () => provider.subscriptions.length === 1);
    await engine.sync();
    const beforeMarkEnded: boolean[] = [];
    let version = 0;
    provider.onPush = (ops) => {
      beforeMarkEnded.push(!markEnded);
      return { results: ops.map((op) => applied(op, ++version)), server_version: version };
    };
    failMark = true;
    await engine.db.table('threads').put({ id: 'marked', title: 'its mark fails' });
    await waitFor(async () => provider.pushes.length >= 2 && (await engine.pendingCount()) === 0);
    const pushes = provider.pushes.filter((ops) => ops.some((op) => op.pk === 'marked'));
    // The first request went while the mark was still being written; its answer settled nothing (the
    // op was still queued, never sent, after the failed transaction), so the op went again.
    expect(beforeMarkEnded[0]).toBe(true);
    expect(pushes).toHaveLength(2);
    expect(pushes[1]![0]!.op_id).toBe(pushes[0]![0]!.op_id);
    expect(await engine.db.table('threads').get('marked')).toMatchObject({ title: 'its mark fails' });
  });
});
