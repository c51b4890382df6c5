/**
 * The phases of the first-sync benchmark (figure P9), run in the browser by
 * `first-sync-page.ts`; `first-sync.ts` calls them one after another and
 * samples the page's heap between and during them.
 *
 * - **raw**: one Dexie `bulkPut` of the N rows a first sync ends up storing,
 *   into the same schema without the engine (built before the clock starts,
 *   dropped after): the baseline.
 * - **first sync**: a fresh device attaches sync to the app's empty database
 *   (`attachSync`, as an app does) and runs `engine.sync()` against the real
 *   gateway holding the N records, until it returns caught up: the snapshot
 *   pages over HTTP, JSON parsing, the writes, the pull. Main-thread tasks
 *   over 50 ms are observed meanwhile (`PerformanceObserver`, `longtask`).
 *
 * The first sync is checked: every record stored, the outbox empty, the
 * cursor set.
 */
import { Dexie } from 'dexie';
import { attachSync } from '../src/attach.js';
import { GatewayProvider } from '../src/gateway/gateway-provider.js';
import { ENGINE_TABLES, STATE_KEYS } from '../src/schema.js';
import { chunkedBulkPuts } from '../src/chunked-write.js';
import { firstSyncRecord, threadCount } from './first-sync-rows.js';

const schema = { threads: 'id, project_id, updated_at', messages: 'id, thread_id, [thread_id+index]' };

/** Times of the first sync, in ms, and the main thread's long tasks meanwhile. */
export interface FirstSyncRun {
  sync: number;
  /** Durations of the long tasks (over 50 ms) seen during the sync, in ms. */
  longTasks: number[];
  /** The longest frames (over 100 ms) and the scripts they ran. */
  longFrames: string[];
}

/** The rows the engine stores for the records: the payload plus the sync fields. */
function storedRows(records: number): { threads: Record<string, unknown>[]; messages: Record<string, unknown>[] } {
  const threads: Record<string, unknown>[] = [];
  const messages: Record<string, unknown>[] = [];
  const split = threadCount(records);
  for (let i = 0; i < records; i++) {
    const r = firstSyncRecord(i, records);
    const row = { ...r.payload, clock: r.clock, hlc: r.hlc, deleted: false, deleted_at: null };
    (i < split ? threads : messages).push(row);
  }
  return { threads, messages };
}

/** The baseline's time (ms) and the long tasks (ms) seen while it ran. */
export interface RawRun {
  raw: number;
  longTasks: number[];
}

/**
 * The baseline: one raw Dexie bulkPut of the rows (per table, in one transaction). `chunked`: the
 * same rows in the same one transaction, in the chunks a first sync writes them in (250 rows, four
 * in flight, `chunked-write.ts`), so that no task clones more than a chunk: what an app that must
 * keep its page responsive can write at best, without the engine.
 */
export async function rawBulkPut(records: number, name: string, chunked = false): Promise<RawRun> {
  let rows: ReturnType<typeof storedRows> | null = storedRows(records);
  const raw = new Dexie(name);
  raw.version(1).stores({ ...schema, ...ENGINE_TABLES });
  await raw.open();
  const watch = watchLongTasks();
  const start = performance.now();
  await raw.transaction('rw', raw.table('threads'), raw.table('messages'), async () => {
    if (chunked) {
      await chunkedBulkPuts<Record<string, unknown>>([
        [raw.table('threads'), rows!.threads],
        [raw.table('messages'), rows!.messages],
      ]);
      return;
    }
    await raw.table('threads').bulkPut(rows!.threads);
    await raw.table('messages').bulkPut(rows!.messages);
  });
  const ms = performance.now() - start;
  const longTasks = watch.stop();
  rows = null;
  const stored = (await raw.table('threads').count()) + (await raw.table('messages').count());
  raw.close();
  await Dexie.delete(name);
  if (stored !== records) throw new Error(`raw bulkPut: ${stored} rows stored, expected ${records}`);
  return { raw: ms, longTasks };
}

/** Watches main-thread long tasks; `stop()` returns their durations (ms). */
function watchLongTasks(): { stop(): number[]; frames(): string[] } {
  const seen: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) seen.push(entry.duration);
  });
  observer.observe({ type: 'longtask' });
  // What the longest frames ran (long-animation-frame script attribution), for the report.
  const frames: { duration: number; what: string }[] = [];
  const loaf = new PerformanceObserver((list) => {
    for (const entry of list.getEntries() as (PerformanceEntry & { scripts?: { invoker: string; sourceFunctionName: string; duration: number }[] })[]) {
      if (entry.duration < 100) continue;
      const scripts = (entry.scripts ?? []).map((s) => `${s.invoker || '?'} ${s.sourceFunctionName || ''} ${Math.round(s.duration)} ms`).join('; ');
      frames.push({ duration: entry.duration, what: `${Math.round(entry.duration)} ms: ${scripts || 'no script'}` });
    }
  });
  try {
    loaf.observe({ type: 'long-animation-frame' });
  } catch {
    // not every Chromium has it
  }
  return {
    stop() {
      for (const entry of observer.takeRecords()) seen.push(entry.duration);
      observer.disconnect();
      loaf.disconnect();
      return seen;
    },
    frames: () => frames.sort((x, y) => y.duration - x.duration).slice(0, 5).map((f) => f.what),
  };
}

/**
 * Proves the long-task observer works here: a 120 ms busy loop must show up as a task of at least 100 ms.
 * The loop runs in a task of its own: what `page.evaluate` runs before its first `await` is not one.
 */
export async function probeLongTasks(): Promise<number> {
  const watch = watchLongTasks();
  setTimeout(() => {
    const until = performance.now() + 120;
    while (performance.now() < until) {
      // busy on purpose
    }
  }, 10);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const seen = watch.stop();
  const longest = Math.max(0, ...seen);
  if (longest < 100) throw new Error(`the longtask observer saw ${seen.length} tasks (longest ${longest} ms) for a 120 ms busy loop`);
  return longest;
}

/** A fresh device's first sync of `records` records from the gateway. */
export async function firstSync(
  baseUrl: string,
  token: string,
  workspaceId: string,
  records: number,
  snapshotLimit: number | null,
): Promise<FirstSyncRun> {
  const name = `p9-${workspaceId}`;
  const db = new Dexie(name);
  db.version(1).stores(schema);
  const provider = new GatewayProvider({ baseUrl, getToken: async () => token, WebSocket: null, snapshotLimit: snapshotLimit ?? undefined });
  const engine = await attachSync(db, { workspaceId, provider, syncedTables: ['threads', 'messages'], broadcast: false, locks: null });
  try {
    const watch = watchLongTasks();
    const start = performance.now();
    const result = await engine.sync();
    const sync = performance.now() - start;
    const longTasks = watch.stop();
    const longFrames = watch.frames();
    if (result.error) throw new Error(`first sync: ${result.error}`);
    const stored = (await engine.db.table('threads').count()) + (await engine.db.table('messages').count());
    const pending = await engine.db.table('_or3sync_outbox').count();
    const cursor = (await engine.db.table('_or3sync_state').get(STATE_KEYS.cursor('*')))?.value;
    if (stored !== records || pending !== 0 || typeof cursor !== 'number' || cursor < records) {
      throw new Error(`first sync: ${stored} of ${records} records stored, ${pending} ops in the outbox, cursor ${cursor}`);
    }
    const last = firstSyncRecord(records - 1, records);
    const row = await engine.db.table(last.table_name).get(last.pk);
    if (row?.content !== last.payload.content || row?.hlc !== last.hlc) throw new Error(`first sync: record ${last.pk} is ${JSON.stringify(row)}`);
    return { sync, longTasks, longFrames };
  } finally {
    await engine.close();
    await Dexie.delete(name);
  }
}
