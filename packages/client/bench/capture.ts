/**
 * Cost of capture (figure P4): 10 000 single puts and one 10 000-row bulkPut
 * into a synced table, with the sync engine's capture vs the same Dexie schema
 * without it, on fake-indexeddb. Rounds alternate the two sides on fresh
 * databases so that load on the machine hits both alike; the ratio printed is
 * the median of the rounds' ratios.
 *
 *   npm run bench -w packages/client            # 10 000 rows, 5 rounds
 *   npm run bench -w packages/client -- --quick # 1 000 rows, 1 round, for a smoke run
 *   npm run bench -w packages/client -- --rounds 9
 */
import { Dexie } from 'dexie';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { openWorkspace } from '../src/engine.js';
import type { SyncProvider } from '../src/provider.js';
import { ENGINE_TABLES } from '../src/schema.js';

const quick = process.argv.includes('--quick');
const rows = quick ? 1_000 : 10_000;
const roundsArg = process.argv.indexOf('--rounds');
const rounds = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : quick ? 1 : 5;

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

/** Wall time and CPU time (user + system) of `fn`, in ms. */
interface Timing {
  wall: number;
  cpu: number;
}

async function time(fn: () => Promise<void>): Promise<Timing> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(cpu);
  return { wall: performance.now() - started, cpu: (used.user + used.system) / 1000 };
}

async function singlePuts(db: Dexie, round: string): Promise<Timing> {
  const table = db.table('messages');
  return time(async () => {
    for (let i = 0; i < rows; i++) await table.put(message(i, round));
  });
}

async function bulkPut(db: Dexie, round: string): Promise<Timing> {
  const batch = Array.from({ length: rows }, (_, i) => message(i, round));
  return time(async () => {
    await db.table('messages').bulkPut(batch);
  });
}

interface Round {
  plainSingle: Timing;
  capturedSingle: Timing;
  plainBulk: Timing;
  capturedBulk: Timing;
}

async function round(n: number): Promise<Round> {
  const plain = await plainDatabase(`bench-plain-${n}`);
  const captured = await capturedDatabase(`bench-captured-${n}`);
  const plainSingle = await singlePuts(plain, 'single');
  const capturedSingle = await singlePuts(captured.db, 'single');
  const plainBulk = await bulkPut(plain, 'bulk');
  const capturedBulk = await bulkPut(captured.db, 'bulk');
  const outbox = await captured.db.table('pending_ops').count();
  plain.close();
  await captured.close();
  if (outbox !== rows * 2) throw new Error(`expected ${rows * 2} captured ops, found ${outbox}`);
  return { plainSingle, capturedSingle, plainBulk, capturedBulk };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
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
    await plain.table('messages').bulkPut(Array.from({ length: 200 }, (_, i) => message(i, 'wb')));
    await captured.db.table('messages').bulkPut(Array.from({ length: 200 }, (_, i) => message(i, 'wb')));
    plain.close();
    await captured.close();
  }

  const results: Round[] = [];
  for (let n = 0; n < rounds; n++) results.push(await round(n));

  const ms = (x: number) => `${x.toFixed(0)} ms`;
  const ratio = (without: number[], withCapture: number[]) =>
    `${median(without.map((w, i) => withCapture[i]! / w)).toFixed(2)}x`;
  const line = (label: string, without: Timing[], withCapture: Timing[]) => {
    const wall = [without.map((t) => t.wall), withCapture.map((t) => t.wall)] as const;
    const cpu = [without.map((t) => t.cpu), withCapture.map((t) => t.cpu)] as const;
    return (
      `${label.padEnd(24)} without ${ms(median(wall[0])).padStart(8)}  with ${ms(median(wall[1])).padStart(8)}  ` +
      `ratio ${ratio(...wall).padStart(6)}  (CPU time: ${ms(median(cpu[0]))} vs ${ms(median(cpu[1]))}, ratio ${ratio(...cpu)})`
    );
  };
  console.log(
    `capture cost on fake-indexeddb (Node ${process.version}), ${rows} rows, median of ${rounds} round${rounds === 1 ? '' : 's'}${quick ? ' (--quick)' : ''}`,
  );
  console.log(line(`${rows} single puts`, results.map((r) => r.plainSingle), results.map((r) => r.capturedSingle)));
  console.log(line(`one ${rows}-row bulkPut`, results.map((r) => r.plainBulk), results.map((r) => r.capturedBulk)));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
