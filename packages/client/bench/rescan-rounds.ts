/**
 * The rounds of the rescan benchmark (figure P5), run in the browser by
 * `rescan-page.ts`: a snapshot of N records (1% threads, 99% messages, 1% of
 * them tombstones) served in pages of 500, the gateway's own default, by an
 * in-memory provider, so only the client's work is timed (no network, no
 * JSON decoding). Per round, on fresh databases, alternating:
 *
 * - **raw**: one Dexie `bulkPut` of the rows the rescan ends up storing, into
 *   the same schema without the sync engine: the baseline.
 * - **bootstrap**: `engine.rescan()` of an empty database (pages written
 *   straight in, each in its own transaction).
 * - **rescan**: `engine.rescan()` again, now over the N stored records plus
 *   100 pending local writes: pages staged, then swapped in one transaction
 *   (which writes only the rows that differ: here none).
 * - **rescan, all changed**: the same after the server changed every record
 *   (a new clock and content), so the swap rewrites all N rows.
 *
 * Each engine run is checked: every record present, the cursor at the
 * snapshot version, the pending writes kept.
 */
import { Dexie } from 'dexie';
import { openWorkspace } from '../src/attach.js';
import type { SyncEngine } from '../src/engine.js';
import { GatewayProvider } from '../src/gateway/gateway-provider.js';
import { SyncProviderError, type SyncProvider } from '../src/provider.js';
import { ENGINE_TABLES, STATE_KEYS } from '../src/schema.js';
import type { SnapshotItem, SnapshotPage } from '@or3/sync-protocol';

/** Times of one round, in ms. */
export interface RescanRound {
  raw: number;
  bootstrap: number;
  rescan: number;
  rescanChanged: number;
}

const schema = { threads: 'id, project_id, updated_at', messages: 'id, thread_id, [thread_id+index]' };
const PAGE = 500;
const SERVER_DEVICE = 'ffeeddccbbaa9988';

function hlc(ms: number): string {
  return `${String(ms).padStart(13, '0')}-000000-${SERVER_DEVICE}`;
}

/** The snapshot: `count` records in `(table_name, pk)` order, as a server sends them. */
export function snapshotItems(count: number, generation = 1): SnapshotItem[] {
  const threads = Math.max(1, Math.floor(count / 100));
  const items: SnapshotItem[] = [];
  for (let i = 0; i < count; i++) {
    const isThread = i < threads;
    const n = isThread ? i : i - threads;
    const pk = `${isThread ? 't' : 'm'}${String(n).padStart(8, '0')}`;
    const stamp = hlc(1_732_540_000_000 + generation * 10_000_000 + i);
    const deleted = i % 100 === 7;
    const payload = isThread
      ? { id: pk, title: `thread ${n}`, project_id: null, created_at: 1_732_540_000, updated_at: 1_732_540_000 }
      : {
          id: pk,
          thread_id: `t${String(n % threads).padStart(8, '0')}`,
          index: n,
          role: n % 2 ? 'assistant' : 'user',
          content: `message number ${n} (version ${generation}) of the benchmark, long enough to look like a chat line`,
          order_key: stamp,
          created_at: 1_732_540_000,
          updated_at: 1_732_540_000,
        };
    items.push({
      table_name: isThread ? 'threads' : 'messages',
      pk,
      payload: deleted ? { ...payload, deleted: true, deleted_at: 1_732_540_001 } : payload,
      deleted,
      clock: generation,
      hlc: stamp,
      op_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      server_version: i + 1,
    });
  }
  return items;
}

/** Serves `source.items` as snapshot pages; pushes fail as offline, pulls are empty. */
function memoryProvider(source: { items: SnapshotItem[] }): SyncProvider {
  const page = (start: number): SnapshotPage => ({
    snapshot_version: source.items.length,
    items: source.items.slice(start, start + PAGE),
    next_page_token: start + PAGE < source.items.length ? String(start + PAGE) : null,
  });
  return {
    mode: 'gateway',
    maxPayloadBytes: 1 << 20,
    // Offline for pushes: the pending writes stay, so the next rescan has some to keep.
    push: () => Promise.reject(new SyncProviderError({ code: 'network_error', message: 'offline', status: 0 })),
    pull: async (_scope, cursor) => ({ changes: [], cursor, has_more: false }),
    snapshot: async (_scope, token) => page(token === null ? 0 : Number(token)),
    subscribe: () => () => {},
    dispose: () => {},
  };
}

async function open(name: string, provider: SyncProvider): Promise<SyncEngine> {
  return openWorkspace({ workspaceId: name, provider, schema, broadcast: false, locks: null });
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

async function expectState(engine: SyncEngine, items: { length: number }, pending: number, what: string): Promise<void> {
  const stored = (await engine.db.table('threads').count()) + (await engine.db.table('messages').count());
  const cursor = (await engine.db.table('_or3sync_state').get(STATE_KEYS.cursor('*')))?.value;
  const ops = await engine.db.table('_or3sync_outbox').count();
  if (stored < items.length || ops !== pending) {
    throw new Error(`${what}: ${stored} records (want ${items.length}), ${ops} pending ops (want ${pending}), cursor ${cursor}`);
  }
}

async function engineRescan(engine: SyncEngine, what: string): Promise<void> {
  // The push fails on purpose (the pending writes stay); the rescan and the pull must not.
  const result = await engine.rescan();
  if (result.error && result.error !== 'network_error') throw new Error(`${what}: ${result.error}`);
}

/** The baseline: one Dexie bulkPut of the rows `items` become, into the same schema without the engine. */
async function rawBulkPut(items: SnapshotItem[], rawName: string): Promise<number> {
  const threadsTable = new Set(items.filter((i) => i.table_name === 'threads').map((i) => i.pk));
  const rows: Record<string, unknown>[] = items.map((item) => ({ ...item.payload, clock: item.clock, hlc: item.hlc, deleted: item.deleted }));
  const raw = new Dexie(rawName);
  raw.version(1).stores({ ...schema, ...ENGINE_TABLES });
  await raw.open();
  const ms = await timed(() =>
    raw.transaction('rw', raw.table('threads'), raw.table('messages'), async () => {
      await raw.table('threads').bulkPut(rows.filter((r) => threadsTable.has(r.id as string)));
      await raw.table('messages').bulkPut(rows.filter((r) => !threadsTable.has(r.id as string)));
    }),
  );
  raw.close();
  await Dexie.delete(rawName);
  return ms;
}

async function round(items: SnapshotItem[], changed: SnapshotItem[], n: number): Promise<RescanRound> {
  const rawMs = await rawBulkPut(items, `p5-raw-${n}`);

  const name = `p5-engine-${n}`;
  const source = { items };
  const engine = await open(name, memoryProvider(source));
  try {
    const bootstrap = await timed(() => engineRescan(engine, 'bootstrap'));
    await expectState(engine, items, 0, 'bootstrap');
    // 100 local edits the server has not seen: the rescan must keep them.
    await engine.db.transaction('rw', engine.db.table('messages'), async () => {
      for (let i = 0; i < 100; i++) {
        const pk = items[items.length - 1 - i * 7]!.pk;
        await engine.db.table('messages').update(pk, { content: `edited ${i}` });
      }
    });
    const rescan = await timed(() => engineRescan(engine, 'rescan'));
    await expectState(engine, items, 100, 'rescan');
    const edited = items[items.length - 1]!.pk;
    const kept = async (what: string) => {
      const row = await engine.db.table('messages').get(edited);
      if (row?.content !== 'edited 0') throw new Error(`${what}: a pending local edit was lost (${row?.content})`);
    };
    await kept('rescan');
    source.items = changed;
    const rescanChanged = await timed(() => engineRescan(engine, 'rescan, all changed'));
    await expectState(engine, changed, 100, 'rescan, all changed');
    await kept('rescan, all changed');
    const sample = await engine.db.table('messages').get(changed[changed.length - 2]!.pk);
    if (sample?.clock !== 2) throw new Error(`rescan, all changed: a changed record was not replaced (${JSON.stringify(sample)})`);
    return { raw: rawMs, bootstrap, rescan, rescanChanged };
  } finally {
    await engine.close();
    await Dexie.delete(`or3-db-${name}`);
  }
}

/** Runs `rounds` rounds over a snapshot of `records` records (after a small warm-up round). */
export async function runRescanRounds(records: number, rounds: number): Promise<RescanRound[]> {
  const warmup = Math.min(records, 2_000);
  await round(snapshotItems(warmup), snapshotItems(warmup, 2), -1);
  const items = snapshotItems(records);
  const changed = snapshotItems(records, 2);
  const results: RescanRound[] = [];
  for (let n = 0; n < rounds; n++) results.push(await round(items, changed, n));
  return results;
}

/** Times of one round against the gateway, in ms. */
export interface GatewayRound {
  raw: number;
  bootstrap: number;
}

/**
 * A fresh device's first `sync()` against a real gateway holding the
 * snapshot of `records` records (seeded by `rescan.ts --gateway`): snapshot
 * pages over HTTP, parsed and written, then the pull; against the raw
 * bulkPut of the same rows, in alternating rounds.
 */
export async function runGatewayRounds(
  baseUrl: string,
  token: string,
  workspaceId: string,
  records: number,
  rounds: number,
): Promise<GatewayRound[]> {
  const results: GatewayRound[] = [];
  for (let n = 0; n < rounds; n++) {
    // The raw side's rows are built for it and dropped after it, as in P9: the page's heap holds
    // none of them during the sync (100,000 live items there made every garbage collection of the
    // sync dearer, a cost of the bench, not of the engine).
    const raw = await rawBulkPut(snapshotItems(records), `p5-gw-raw-${n}`);
    const provider = new GatewayProvider({ baseUrl, getToken: async () => token, WebSocket: null });
    const engine = await openWorkspace({ workspaceId, provider, schema, broadcast: false, locks: null });
    try {
      const bootstrap = await timed(async () => {
        const result = await engine.sync();
        if (result.error) throw new Error(`bootstrap from the gateway: ${result.error}`);
      });
      await expectState(engine, { length: records }, 0, 'bootstrap from the gateway');
      results.push({ raw, bootstrap });
    } finally {
      await engine.close();
      await Dexie.delete(`or3-db-${workspaceId}`);
    }
  }
  return results;
}
