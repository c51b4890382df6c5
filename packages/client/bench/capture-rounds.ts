/**
 * The rounds of the capture benchmark (figure P4), independent of where they
 * run: 10 000 single puts and one 10 000-row bulkPut into a synced table,
 * with the sync engine's capture and into the same Dexie schema without it.
 * Each round uses fresh databases and alternates the two sides, so load on
 * the machine hits both alike. Runs on fake-indexeddb in Node
 * (`capture.ts`) and on Chromium's IndexedDB (`capture-page.ts`).
 */
import { Dexie } from 'dexie';
import { openWorkspace } from '../src/engine.js';
import type { SyncProvider } from '../src/provider.js';
import { ENGINE_TABLES } from '../src/schema.js';

/** Where the databases live. */
export interface IndexedDbEnvironment {
  /** A fresh factory (fake-indexeddb) or the browser's. */
  indexedDB: () => IDBFactory;
  IDBKeyRange: typeof IDBKeyRange;
  /** Deletes a database after its round (the browser keeps them on disk). */
  deleteDatabase?: (name: string) => Promise<void>;
  /** CPU time so far in ms, where the runtime reports it. */
  cpuTime?: () => number;
}

/** Wall time and, where known, CPU time of one measured step, in ms. */
export interface Timing {
  wall: number;
  cpu: number | null;
}

/** One round's four measurements. */
export interface CaptureRound {
  plainSingle: Timing;
  capturedSingle: Timing;
  plainBulk: Timing;
  capturedBulk: Timing;
}

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
  return {
    id: `${round}-${i}`,
    thread_id: `t${i % 50}`,
    index: i,
    role: 'user',
    content: `message number ${i} of the benchmark`,
    created_at: 1_732_540_000,
  };
}

async function plainDatabase(env: IndexedDbEnvironment, name: string): Promise<Dexie> {
  const db = new Dexie(name, { indexedDB: env.indexedDB(), IDBKeyRange: env.IDBKeyRange });
  // The same stores as the engine's database, so only capture differs.
  db.version(1).stores({ ...schema, ...ENGINE_TABLES });
  await db.open();
  return db;
}

async function capturedDatabase(env: IndexedDbEnvironment, name: string, rows: number) {
  const engine = await openWorkspace({
    workspaceId: name,
    provider: offlineProvider,
    schema,
    dexieOptions: { indexedDB: env.indexedDB(), IDBKeyRange: env.IDBKeyRange },
    broadcast: false,
    locks: null,
    outboxSoftLimit: rows * 10, // no coalescing: every write appends
  });
  return { db: engine.db, close: () => engine.close() };
}

async function time(env: IndexedDbEnvironment, fn: () => Promise<void>): Promise<Timing> {
  const started = performance.now();
  const cpu = env.cpuTime?.() ?? null;
  await fn();
  return { wall: performance.now() - started, cpu: cpu === null ? null : env.cpuTime!() - cpu };
}

function singlePuts(env: IndexedDbEnvironment, db: Dexie, rows: number, round: string): Promise<Timing> {
  const table = db.table('messages');
  return time(env, async () => {
    for (let i = 0; i < rows; i++) await table.put(message(i, round));
  });
}

function bulkPut(env: IndexedDbEnvironment, db: Dexie, rows: number, round: string): Promise<Timing> {
  const batch = Array.from({ length: rows }, (_, i) => message(i, round));
  return time(env, async () => {
    await db.table('messages').bulkPut(batch);
  });
}

async function round(env: IndexedDbEnvironment, rows: number, n: number): Promise<CaptureRound> {
  const plainName = `bench-plain-${n}`;
  const capturedName = `bench-captured-${n}`;
  const plain = await plainDatabase(env, plainName);
  const captured = await capturedDatabase(env, capturedName, rows);
  const plainSingle = await singlePuts(env, plain, rows, 'single');
  const capturedSingle = await singlePuts(env, captured.db, rows, 'single');
  const plainBulk = await bulkPut(env, plain, rows, 'bulk');
  const capturedBulk = await bulkPut(env, captured.db, rows, 'bulk');
  const outbox = await captured.db.table('pending_ops').count();
  plain.close();
  await captured.close();
  await env.deleteDatabase?.(plainName);
  await env.deleteDatabase?.(`or3-db-${capturedName}`);
  if (outbox !== rows * 2) throw new Error(`expected ${rows * 2} captured ops, found ${outbox}`);
  return { plainSingle, capturedSingle, plainBulk, capturedBulk };
}

/** Warms the JIT up on both paths, then runs `rounds` rounds of `rows` rows. */
export async function runCaptureRounds(env: IndexedDbEnvironment, rows: number, rounds: number): Promise<CaptureRound[]> {
  const plain = await plainDatabase(env, 'warmup-plain');
  const captured = await capturedDatabase(env, 'warmup-captured', rows);
  for (let i = 0; i < 200; i++) {
    await plain.table('messages').put(message(i, 'w'));
    await captured.db.table('messages').put(message(i, 'w'));
  }
  await plain.table('messages').bulkPut(Array.from({ length: 200 }, (_, i) => message(i, 'wb')));
  await captured.db.table('messages').bulkPut(Array.from({ length: 200 }, (_, i) => message(i, 'wb')));
  plain.close();
  await captured.close();
  await env.deleteDatabase?.('warmup-plain');
  await env.deleteDatabase?.('or3-db-warmup-captured');

  const results: CaptureRound[] = [];
  for (let n = 0; n < rounds; n++) results.push(await round(env, rows, n));
  return results;
}
