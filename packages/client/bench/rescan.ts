/**
 * Rescan and bootstrap into Chromium's IndexedDB (figure P5): the sync
 * engine's `rescan()` of a 100 000-record snapshot, into an empty database
 * (bootstrap) and over a full one (staged rescan; once with nothing changed
 * on the server, once with every record changed), against one raw Dexie
 * `bulkPut` of the same rows in the same run. Printed: rows/s of each and
 * the engine's rate ÷ the raw rate (goal ≥ 0.60), the median of the rounds.
 *
 *   npm run bench:rescan -w packages/client              # 100 000 records, 3 rounds
 *   npm run bench:rescan -w packages/client -- --quick   # 2 000 records, 1 round: a smoke run
 *   npm run bench:rescan -w packages/client -- --records 20000 --rounds 5
 *   npm run bench:rescan -w packages/client -- --gateway  # end to end from the gateway, see below
 *
 * `--gateway` measures instead a fresh device's first `sync()` against the
 * real `or3-sync` binary (release build when there is one, else debug;
 * `OR3_SYNC_BIN` to choose) holding the same records: snapshot pages over
 * HTTP, JSON parsing, the writes and the pull, against the same raw bulkPut.
 * The page is served by the gateway itself (`--static-dir`), so the
 * requests are same-origin. Seeding the server (pushes of 100 ops) is not timed.
 */
import type { PushOp, PushResponse } from '@or3/sync-protocol';
import type { TestServer } from '../test/support/server.js';
import { inChromium, median } from './chromium.js';
import { startPageGateway } from './page-gateway.js';
import { resultsPath, sizeFlags, writeFigureBlock, type FigureRow } from './results.js';
import { snapshotItems, type GatewayRound } from './rescan-rounds.js';

const { quick, records, rounds, rate } = sizeFlags(process.argv);

/** A figure of the engine's time `pick` against the raw bulkPut of the same round: rows/s ratio, median of the rounds. */
function figureRow<R extends { raw: number }>(result: R[], figure: string, pick: (r: R) => number): FigureRow {
  const ratio = median(result.map((r) => r.raw / pick(r)));
  return {
    figure,
    measured: rate(median(result.map(pick))),
    baseline: `${rate(median(result.map((r) => r.raw)))} (one raw Dexie bulkPut of the same rows, same schema)`,
    ratio,
    goal: 'ratio ≥ 0.60',
    pass: ratio >= 0.6,
  };
}

function ratioLine(row: FigureRow): string {
  return (
    `${row.figure.padEnd(34)} ${row.measured.padStart(16)}  raw bulkPut ${row.baseline.split(' (')[0]!.padStart(16)}  ` +
    `ratio ${row.ratio.toFixed(2)} (goal >= 0.60)`
  );
}

/** Prints the rows and, with `--results FILE`, writes them as figure `id`'s block. */
function report(id: string, heading: string, rows: FigureRow[], notes: string[]): void {
  console.log(heading);
  for (const row of rows) console.log(ratioLine(row));
  const path = resultsPath(process.argv);
  const flags = [process.argv.includes('--gateway') ? '--gateway' : '', quick ? '--quick' : ''].filter(Boolean).join(' ');
  const command = `npm run bench:rescan -w packages/client${flags ? ` -- ${flags}` : ''}`;
  if (path) writeFigureBlock(path, id, heading, command, rows, notes);
}

function rounded(n: number): string {
  return `${n} round${n === 1 ? '' : 's'}`;
}

/** Pushes the snapshot's records to `workspaceId`, 100 ops per request, 4 requests in flight. */
async function seed(server: TestServer, token: string, workspaceId: string): Promise<void> {
  const ops: PushOp[] = snapshotItems(records).map((item) => ({
    op_id: item.op_id,
    table_name: item.table_name,
    operation: 'put',
    pk: item.pk,
    payload: item.payload,
    clock: item.clock,
    hlc: item.hlc,
    device_id: item.hlc.slice(-16),
  }));
  let next = 0;
  const worker = async () => {
    while (next < ops.length) {
      const batch = ops.slice(next, (next += 100));
      const { status, body } = await server.api<PushResponse>(token, 'POST', `/v1/workspaces/${workspaceId}/push`, { ops: batch });
      const bad = body?.results?.find((r) => r.status !== 'applied');
      if (status !== 200 || bad) throw new Error(`seeding: HTTP ${status} ${JSON.stringify(bad ?? body)}`);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

async function gateway(): Promise<void> {
  const gatewayForPage = await startPageGateway();
  const { server } = gatewayForPage;
  try {
    const token = await server.token('p5-bench');
    const workspaceId = await server.createWorkspace(token, 'p5');
    const seeding = performance.now();
    await seed(server, token, workspaceId);
    const seeded = performance.now() - seeding;
    const { result, version } = await inChromium(
      new URL('./rescan-page.ts', import.meta.url),
      (page) =>
        page.evaluate(([url, t, ws, r, n]) => window.runGatewayBench(url, t, ws, r, n), [server.baseUrl, token, workspaceId, records, rounds] as const),
      gatewayForPage.serve,
    );
    report(
      'P5-e2e',
      `bootstrap from the gateway (${gatewayForPage.binary}) into Chromium ${version} IndexedDB, ` +
        `${records} records, median of ${rounded(rounds)}${quick ? ' (--quick)' : ''}`,
      [figureRow<GatewayRound>(result, 'first sync, end to end over HTTP', (r) => r.bootstrap)],
      [
        `A fresh device's engine.sync() against the gateway (dev auth, SQLite) holding the records: snapshot pages of 1000 (the client's default) over HTTP on loopback, JSON parsing, the writes, the pull. Seeding the server took ${(seeded / 1000).toFixed(1)} s (not timed).`,
      ],
    );
  } finally {
    await gatewayForPage.stop();
  }
}

async function main() {
  if (process.argv.includes('--gateway')) return gateway();
  const { result, version } = await inChromium(new URL('./rescan-page.ts', import.meta.url), (page) =>
    page.evaluate(([r, n]) => window.runRescanBench(r, n), [records, rounds] as const),
  );
  report(
    'P5',
    `rescan into Chromium ${version} IndexedDB, ${records} records in pages of 500, median of ${rounded(rounds)}${quick ? ' (--quick)' : ''}`,
    [
      figureRow(result, 'bootstrap (empty database)', (r) => r.bootstrap),
      figureRow(result, 'rescan (staged, 100 pending writes)', (r) => r.rescan),
      figureRow(result, 'rescan, every record changed', (r) => r.rescanChanged),
    ],
    [
      'engine.rescan() fed by an in-memory provider (the client alone: no network, no JSON parsing); 1% threads, 99% messages, 1% tombstones. "rescan" runs over the stored records, nothing changed on the server (the swap writes only what differs); "every record changed" rewrites all of them.',
    ],
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
