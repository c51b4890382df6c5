/**
 * Adoption into or3-sync from Chromium's IndexedDB (figure P10): a database
 * holding N rows written before sync was switched on is attached and synced
 * to the real `or3-sync` gateway (release build when there is one, else
 * debug; `OR3_SYNC_BIN` to choose), until every row is on the server, against
 * one raw Dexie read of the same rows in the same run. Printed: rows/s of each
 * and the ratio, the median of the rounds. There is no goal: adoption pushes
 * every row over HTTP, a read does not; the figure says what switching sync
 * on costs a user with a big database.
 *
 *   npm run bench:adopt -w packages/client               # 100 000 rows, 3 rounds
 *   npm run bench:adopt -w packages/client -- --quick    # 2 000 rows, 1 round
 *   npm run bench:adopt -w packages/client -- --records 20000 --rounds 5
 *   npm run bench:adopt -w packages/client -- --quick --cpu-profile /tmp/p10.cpuprofile
 */
import { writeFileSync } from 'node:fs';
import { inChromium, median } from './chromium.js';
import { startPageGateway } from './page-gateway.js';
import { resultsPath, sizeFlags, writeFigureBlock, type FigureRow } from './results.js';
import type { AdoptRound } from './adopt-rounds.js';

const { quick, records, rounds, rate } = sizeFlags(process.argv);
/** `--cpu-profile FILE`: the page's CPU profile of the rounds (the app's own writes of the rows too), for DevTools or speedscope. */
const profileAt = process.argv.indexOf('--cpu-profile');
const profilePath = profileAt > 0 ? (process.argv[profileAt + 1] ?? null) : null;

async function main(): Promise<void> {
  const gatewayForPage = await startPageGateway();
  const { server } = gatewayForPage;
  try {
    const token = await server.token('p10-bench');
    const workspaceIds: string[] = [];
    for (let n = 0; n < rounds; n++) workspaceIds.push(await server.createWorkspace(token, `p10-${n}`));
    const { result, version } = await inChromium(
      new URL('./adopt-page.ts', import.meta.url),
      async (page) => {
        const cdp = profilePath ? await page.context().newCDPSession(page) : null;
        if (cdp) await cdp.send('Profiler.enable');
        if (cdp) await cdp.send('Profiler.start');
        const rounds = await page.evaluate(([url, t, ws, r]) => window.runAdoptBench(url, t, ws, r), [server.baseUrl, token, workspaceIds, records] as const);
        if (cdp && profilePath) writeFileSync(profilePath, JSON.stringify((await cdp.send('Profiler.stop')).profile));
        return rounds;
      },
      gatewayForPage.serve,
    );
    // Every row ended on the server: its snapshot of each round's workspace holds them all (not timed).
    for (const workspaceId of workspaceIds) {
      const onServer = await serverRecords(server, token, workspaceId);
      if (onServer !== records) throw new Error(`adoption: the server holds ${onServer} of ${records} rows`);
    }
    const ratio = median(result.map((r: AdoptRound) => r.raw / r.adopt));
    const row: FigureRow = {
      figure: 'adoption: attach + first sync, every row pushed',
      measured: rate(median(result.map((r) => r.adopt))),
      baseline: `${rate(median(result.map((r) => r.raw)))} (one raw Dexie read of the same rows)`,
      ratio,
      goal: 'none (reported)',
      pass: null,
    };
    const heading = `adoption of ${records} pre-existing rows from Chromium ${version} IndexedDB to the gateway (${gatewayForPage.binary}), median of ${rounds} round${rounds === 1 ? '' : 's'}${quick ? ' (--quick)' : ''}`;
    console.log(heading);
    console.log(`${row.figure}  ${row.measured}  raw read ${row.baseline.split(' (')[0]}  ratio ${ratio.toFixed(3)}`);
    for (const r of result) console.log(`  round: adoption ${(r.adopt / 1000).toFixed(1)} s (all queued after ${(r.queued / 1000).toFixed(1)} s), raw read ${r.raw.toFixed(0)} ms`);
    const path = resultsPath(process.argv);
    if (path) {
      const flags = process.argv.slice(2).filter((arg, i, all) => arg !== '--results' && all[i - 1] !== '--results');
      const command = `npm run bench:adopt -w packages/client${flags.length ? ` -- ${flags.join(' ')}` : ''}`;
      const queued = median(result.map((r) => r.queued));
      writeFigureBlock(path, 'P10', heading, command, [row], [
        'A database with 1% threads, 99% messages (no clock, no hlc) written with plain Dexie, then attachSync and engine.sync() against the gateway (dev auth, SQLite, synchronous=full): the empty snapshot, adoption in batches of 500 into the outbox, pushed over HTTP on loopback while it queues (one push in flight: 100 ops, then the gateway\'s max_ops_per_push, 500, once a batch is taken full), the swap, the rest of the pushes, the pull (from past the device\'s own pushed changes). Every row is checked kept locally, the outbox empty, and every row in the server\'s snapshot.',
        `Of that, every row was queued in the outbox after ${(queued / 1000).toFixed(1)} s (${rate(queued)}), pushes going on meanwhile; the rest is the swap, the pushes left and the pull.`,
      ]);
    }
  } finally {
    await gatewayForPage.stop();
  }
}

/** How many live records the server's snapshot of `workspaceId` holds. */
async function serverRecords(server: Awaited<ReturnType<typeof startPageGateway>>['server'], token: string, workspaceId: string): Promise<number> {
  let count = 0;
  let pageToken: string | null = null;
  do {
    const query: string = `limit=1000${pageToken ? `&page_token=${encodeURIComponent(pageToken)}` : ''}`;
    const { status, body } = await server.api<{ items: { deleted: boolean }[]; next_page_token?: string | null }>(token, 'GET', `/v1/workspaces/${workspaceId}/snapshot?${query}`);
    if (status !== 200) throw new Error(`snapshot of ${workspaceId}: ${status}`);
    count += body.items.filter((item) => !item.deleted).length;
    pageToken = body.next_page_token ?? null;
  } while (pageToken);
  return count;
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
