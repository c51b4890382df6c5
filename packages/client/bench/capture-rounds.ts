/**
 * The rounds of the capture benchmark (figure P4), independent of where they
 * run: 10 000 single puts and one 10 000-row bulkPut into a synced table,
 * with the sync engine's capture and into the same Dexie schema without it.
 * Each round uses fresh databases and alternates the two sides, so load on
 * the machine hits both alike. Runs on fake-indexeddb in Node
 * (`capture.ts`) and on Chromium's IndexedDB (`capture-page.ts`).
 */
import { Dexie } from 'dexie';
import { openWorkspace } from '../src/attach.js';
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

/** One round's measurements. */
export interface CaptureRound {
  plainSingle: Timing;
  capturedSingle: Timing;
  plainBulk: Timing;
  capturedBulk: Timing;
  /** The protocol's floor, in raw IndexedDB: the row alone, and the row with what capture must add. */
  floor: { rowSingle: Timing; protocolSingle: Timing; rowBulk: Timing; protocolBulk: Timing };
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

/**
 * What PROTOCOL.md section 6 asks of every captured write, in raw IndexedDB
 * with no library: the row, plus in the same transaction an outbox op
 * carrying the row as its payload (auto-increment key, `[table_name+pk]`
 * and `status` indexes, as the engine's outbox) and the clock state
 * (read, then written once per transaction). Against the row alone in the
 * same schema, this is the least any capture can cost here.
 */
async function rawFloor(env: IndexedDbEnvironment, rows: number, n: number): Promise<CaptureRound['floor']> {
  const name = `bench-floor-${n}`;
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const request = env.indexedDB().open(name, 1);
    request.onupgradeneeded = () => {
      const messages = request.result.createObjectStore('messages', { keyPath: 'id' });
      messages.createIndex('thread_id', 'thread_id');
      messages.createIndex('[thread_id+index]', ['thread_id', 'index']);
      const outbox = request.result.createObjectStore('_or3sync_outbox', { keyPath: 'seq', autoIncrement: true });
      outbox.createIndex('[table_name+pk]', ['table_name', 'pk']);
      outbox.createIndex('status', 'status');
      request.result.createObjectStore('_or3sync_state', { keyPath: 'key' });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const stamped = (i: number, prefix: string) => ({
    ...message(i, prefix),
    clock: 1,
    hlc: '1732540000000-000000-a1b2c3d4e5f60718',
    deleted: false,
    deleted_at: null,
    updated_at: 1_732_540_000,
    order_key: '1732540000000-000000-a1b2c3d4e5f60718',
  });
  const op = (row: ReturnType<typeof stamped>) => ({
    op_id: crypto.randomUUID(),
    table_name: 'messages',
    operation: 'put',
    pk: row.id,
    payload: row,
    clock: row.clock,
    hlc: row.hlc,
    device_id: 'a1b2c3d4e5f60718',
    status: 'pending',
    sent: 0,
    attempts: 0,
    error: null,
    created_at: Date.now(),
  });
  const transaction = (write: (tx: IDBTransaction) => void) =>
    new Promise<void>((resolve, reject) => {
      const tx = db.transaction(['messages', '_or3sync_outbox', '_or3sync_state'], 'readwrite');
      write(tx);
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
    });
  const protocolWrite = (tx: IDBTransaction, batch: ReturnType<typeof stamped>[]) => {
    tx.objectStore('_or3sync_state').get('hlc');
    for (const row of batch) {
      tx.objectStore('messages').put(row);
      tx.objectStore('_or3sync_outbox').add(op(row));
    }
    tx.objectStore('_or3sync_state').put({ key: 'hlc', value: { ms: 1_732_540_000_000, counter: 0, tombstone_tables: [] } });
  };
  const single = (prefix: string, write: (tx: IDBTransaction, row: ReturnType<typeof stamped>) => void) =>
    time(env, async () => {
      for (let i = 0; i < rows; i++) {
        const row = stamped(i, prefix);
        await transaction((tx) => write(tx, row));
      }
    });
  const bulk = (prefix: string, write: (tx: IDBTransaction, batch: ReturnType<typeof stamped>[]) => void) => {
    const batch = Array.from({ length: rows }, (_, i) => stamped(i, prefix));
    return time(env, () => transaction((tx) => write(tx, batch)));
  };
  const floor = {
    rowSingle: await single('fr', (tx, row) => tx.objectStore('messages').put(row)),
    protocolSingle: await single('fp', (tx, row) => protocolWrite(tx, [row])),
    rowBulk: await bulk('fbr', (tx, batch) => batch.forEach((row) => tx.objectStore('messages').put(row))),
    protocolBulk: await bulk('fbp', protocolWrite),
  };
  db.close();
  await env.deleteDatabase?.(name);
  return floor;
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
  const outbox = await captured.db.table('_or3sync_outbox').count();
  plain.close();
  await captured.close();
  await env.deleteDatabase?.(plainName);
  await env.deleteDatabase?.(`or3-db-${capturedName}`);
  if (outbox !== rows * 2) throw new Error(`expected ${rows * 2} captured ops, found ${outbox}`);
  const floor = await rawFloor(env, rows, n);
  return { plainSingle, capturedSingle, plainBulk, capturedBulk, floor };
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
