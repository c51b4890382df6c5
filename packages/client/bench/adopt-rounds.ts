/**
 * The rounds of the adoption benchmark (figure P10), run in the browser by
 * `adopt-page.ts`. Per round, on a fresh database and a fresh workspace of a
 * real gateway: the app writes N rows with plain Dexie before sync exists
 * (1% threads, 99% messages, no `clock` or `hlc`; not timed), then
 *
 * - **raw**: one Dexie read of the same rows (`toArray()` of each table): the baseline;
 * - **adoption**: `attachSync` and the first `sync()`, until every row is on
 *   the server: the snapshot (empty), adoption into the outbox with its ops
 *   pushed meanwhile, the swap, the push of the rest (batches of 100, then of
 *   the gateway's `max_ops_per_push`), the pull.
 *
 * Each round is checked: nothing left in the outbox, every row kept locally
 * (and, by `adopt.ts`, every row in the server's snapshot).
 */
import { Dexie } from 'dexie';
import { attachSync } from '../src/attach.js';
import { GatewayProvider } from '../src/gateway/gateway-provider.js';

/** Times of one round, in ms. */
export interface AdoptRound {
  raw: number;
  adopt: number;
  /** Of `adopt`, until every row was queued in the outbox (the rest: the swap, the push, the pull). */
  queued: number;
}

const schema = { threads: 'id, project_id, updated_at', messages: 'id, thread_id, [thread_id+index]' };

/** `count` rows as an app without sync leaves them. */
function appRows(count: number): { threads: Record<string, unknown>[]; messages: Record<string, unknown>[] } {
  const threadCount = Math.max(1, Math.floor(count / 100));
  const threads = Array.from({ length: threadCount }, (_, n) => ({
    id: `t${String(n).padStart(8, '0')}`,
    title: `thread ${n}`,
    project_id: null,
    created_at: 1_732_540_000,
    updated_at: 1_732_540_000,
  }));
  const messages = Array.from({ length: count - threadCount }, (_, n) => ({
    id: `m${String(n).padStart(8, '0')}`,
    thread_id: `t${String(n % threadCount).padStart(8, '0')}`,
    index: n,
    role: n % 2 ? 'assistant' : 'user',
    content: `message number ${n} of the benchmark, written before sync was switched on, long enough to look like a chat line`,
    created_at: 1_732_540_000,
    updated_at: 1_732_540_000,
  }));
  return { threads, messages };
}

function appDatabase(name: string): Dexie {
  const db = new Dexie(name);
  db.version(1).stores(schema);
  return db;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/** One round per workspace id in `workspaceIds`. */
export async function runAdoptRounds(baseUrl: string, token: string, workspaceIds: string[], records: number): Promise<AdoptRound[]> {
  const rows = appRows(records);
  const results: AdoptRound[] = [];
  for (const workspaceId of workspaceIds) {
    const name = `or3-db-${workspaceId}`;
    const app = appDatabase(name);
    await app.open();
    await app.table('threads').bulkPut(rows.threads);
    await app.table('messages').bulkPut(rows.messages);
    let read = 0;
    const raw = await timed(async () => {
      read = (await app.table('threads').toArray()).length + (await app.table('messages').toArray()).length;
    });
    if (read !== records) throw new Error(`raw read: ${read} rows, expected ${records}`);
    app.close();

    const provider = new GatewayProvider({ baseUrl, getToken: async () => token, WebSocket: null });
    const engine = await attachSync(appDatabase(name), {
      workspaceId,
      provider,
      syncedTables: ['threads', 'messages'],
      broadcast: false,
      locks: null,
    });
    try {
      const start = performance.now();
      let queued = 0;
      engine.on('sync.adopt:action', (event) => {
        if (event.phase === 'finished') queued = performance.now() - start;
      });
      const adopt = await timed(async () => {
        const result = await engine.sync();
        if (result.error) throw new Error(`adoption: ${result.error}`);
      });
      const pending = await engine.pendingCount();
      const kept = (await engine.db.table('threads').count()) + (await engine.db.table('messages').count());
      if (pending !== 0 || kept !== records) throw new Error(`adoption: ${pending} ops left, ${kept} of ${records} rows kept`);
      results.push({ raw, adopt, queued });
    } finally {
      await engine.close();
      await Dexie.delete(name);
    }
  }
  return results;
}
