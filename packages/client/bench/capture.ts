/**
 * Cost of capture: 10 000 single puts and one 10 000-row bulkPut into a synced
 * table, with the sync engine's capture vs the same Dexie schema without it,
 * in one run on fake-indexeddb. Prints the times and the ratios.
 *
 *   npm run bench -w packages/client            # 10 000 rows
 *   npm run bench -w packages/client -- --quick # 1 000 rows, for a smoke run
 */
import { Dexie } from 'dexie';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { openWorkspace } from '../src/engine.js';
import type { SyncProvider } from '../src/provider.js';
import { ENGINE_TABLES } from '../src/schema.js';

const quick = process.argv.includes('--quick');
const rows = quick ? 1_000 : 10_000;

const schema = { messages: 'id, thread_id, [thread_id+index]' };

/** The engine never talks to the network here: the loops are not started. */
const offlineProvider: SyncProvider = {
  mode: 'gateway',
  maxPayloadBytes: 1 << 20,
  push: () => Promise.reject(new Error('offline')),
  pull: () => Promise.reject(new Error('offline')),
  snapshot: () => Promise.reject(new Error('offline')),
  subscribe: () => () => {},
  dispose: () => {},
};

function message(i: number, round: string) {
  return { id: `${round}-${i}`, thread_id: `t${i % 50}`, index: i, role: 'user', content: `message number ${i} of the benchmark`, created_at: 1_732_540_000 };
}

async function plainDatabase(name: string): Promise<Dexie> {
  const db = new Dexie(name, { indexedDB: new IDBFactory(), IDBKeyRange });
  // The same stores as the engine's database, so only capture differs.
  db.version(1).stores({ ...schema, ...ENGINE_TABLES });
  await db.open();
  return db;
}

async function capturedDatabase(name: string): Promise<{ db: Dexie; close: () => Promise<void> }> {
  const engine = await openWorkspace({
    workspaceId: name,
    provider: offlineProvider,
    schema,
    dexieOptions: { indexedDB: new IDBFactory(), IDBKeyRange },
    broadcast: false,
    locks: null,
    outboxSoftLimit: rows * 10, // no coalescing: every write appends
  });
  return { db: engine.db, close: () => engine.close() };
}

async function time(fn: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

async function singlePuts(db: Dexie, round: string): Promise<number> {
  const table = db.table('messages');
  return time(async () => {
    for (let i = 0; i < rows; i++) await table.put(message(i, round));
  });
}

async function bulkPut(db: Dexie, round: string): Promise<number> {
  const batch = Array.from({ length: rows }, (_, i) => message(i, round));
  return time(async () => {
    await db.table('messages').bulkPut(batch);
  });
}

async function main() {
  // Warm up the JIT on both paths with a small round first.
  {
    const plain = await plainDatabase('warmup-plain');
    const captured = await capturedDatabase('warmup-captured');
    for (let i = 0; i < 200; i++) {
      await plain.table('messages').put(message(i, 'w'));
      await captured.db.table('messages').put(message(i, 'w'));
    }
    plain.close();
    await captured.close();
  }

  const plain = await plainDatabase('bench-plain');
  const captured = await capturedDatabase('bench-captured');
  const plainSingle = await singlePuts(plain, 'single');
  const capturedSingle = await singlePuts(captured.db, 'single');
  const plainBulk = await bulkPut(plain, 'bulk');
  const capturedBulk = await bulkPut(captured.db, 'bulk');
  const outbox = await captured.db.table('pending_ops').count();
  plain.close();
  await captured.close();
  if (outbox !== rows * 2) throw new Error(`expected ${rows * 2} captured ops, found ${outbox}`);

  const ms = (x: number) => `${x.toFixed(0)} ms`;
  const line = (label: string, without: number, withCapture: number) =>
    `${label.padEnd(28)} without ${ms(without).padStart(9)}   with ${ms(withCapture).padStart(9)}   ratio ${(withCapture / without).toFixed(2)}x`;
  console.log(`capture cost on fake-indexeddb (Node ${process.version}), ${rows} rows${quick ? ' (--quick)' : ''}`);
  console.log(line(`${rows} single puts`, plainSingle, capturedSingle));
  console.log(line(`one ${rows}-row bulkPut`, plainBulk, capturedBulk));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
