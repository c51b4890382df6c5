/**
 * Adoption into or3-sync from Chromium's IndexedDB (figure P8): a database
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
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../test/support/server.js';
import { inChromium, median } from './chromium.js';
import { resultsPath, writeFigureBlock, type FigureRow } from './results.js';
import type { AdoptRound } from './adopt-rounds.js';

function flag(name: string): number | null {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : null;
}

const quick = process.argv.includes('--quick');
const records = flag('--records') ?? (quick ? 2_000 : 100_000);
const rounds = flag('--rounds') ?? (quick ? 1 : 3);
const rate = (ms: number) => `${Math.round((records / ms) * 1000).toLocaleString('en-US')} rows/s`;

async function main(): Promise<void> {
  const repo = fileURLToPath(new URL('../../..', import.meta.url));
  const release = join(repo, 'target/release/or3-sync');
  if (!process.env.OR3_SYNC_BIN && existsSync(release)) process.env.OR3_SYNC_BIN = release;
  const staticDir = mkdtempSync(join(tmpdir(), 'or3-p8-page-'));
  writeFileSync(join(staticDir, 'index.html'), '');
  const unlimited = ['push', 'pull', 'subscribe', 'anonymous'].flatMap((k) => [`--rate-${k}-per-minute`, '1000000000']);
  const server = await startServer(['--static-dir', staticDir, ...unlimited]);
  try {
    const token = await server.token('p8-bench');
    const workspaceIds: string[] = [];
    for (let n = 0; n < rounds; n++) workspaceIds.push(await server.createWorkspace(token, `p8-${n}`));
    const { result, version } = await inChromium(
      new URL('./adopt-page.ts', import.meta.url),
      (page) => page.evaluate(([url, t, ws, r]) => window.runAdoptBench(url, t, ws, r), [server.baseUrl, token, workspaceIds, records] as const),
      async (html) => {
        writeFileSync(join(staticDir, 'index.html'), html);
        return `${server.baseUrl}/`;
      },
    );
    const ratio = median(result.map((r: AdoptRound) => r.raw / r.adopt));
    const row: FigureRow = {
      figure: 'adoption: attach + first sync, every row pushed',
      measured: rate(median(result.map((r) => r.adopt))),
      baseline: `${rate(median(result.map((r) => r.raw)))} (one raw Dexie read of the same rows)`,
      ratio,
      goal: 'none (reported)',
      pass: null,
    };
    const bin = relative(repo, process.env.OR3_SYNC_BIN ?? join(repo, 'target/debug/or3-sync'));
    const heading = `adoption of ${records} pre-existing rows from Chromium ${version} IndexedDB to the gateway (${bin}), median of ${rounds} round${rounds === 1 ? '' : 's'}${quick ? ' (--quick)' : ''}`;
    console.log(heading);
    console.log(`${row.figure}  ${row.measured}  raw read ${row.baseline.split(' (')[0]}  ratio ${ratio.toFixed(3)}`);
    for (const r of result) console.log(`  round: adoption ${(r.adopt / 1000).toFixed(1)} s, raw read ${r.raw.toFixed(0)} ms`);
    const path = resultsPath(process.argv);
    if (path) {
      writeFigureBlock(path, 'P8', heading, `npm run bench:adopt -w packages/client${quick ? ' -- --quick' : ''}`, [row], [
        'A database with 1% threads, 99% messages (no clock, no hlc) written with plain Dexie, then attachSync and engine.sync() against the gateway (dev auth, SQLite, synchronous=full): the empty snapshot, adoption in batches of 500 into the outbox, 1 000 pushes of 100 ops over HTTP on loopback, the pull. Every row is checked kept locally and the outbox empty.',
      ]);
    }
  } finally {
    await server.stop();
    rmSync(staticDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
