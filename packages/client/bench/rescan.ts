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
 */
import { inChromium, median } from './chromium.js';
import type { RescanRound } from './rescan-rounds.js';

function flag(name: string): number | null {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : null;
}

const quick = process.argv.includes('--quick');
const records = flag('--records') ?? (quick ? 2_000 : 100_000);
const rounds = flag('--rounds') ?? (quick ? 1 : 3);

async function main() {
  const { result, version } = await inChromium(new URL('./rescan-page.ts', import.meta.url), (page) =>
    page.evaluate(([r, n]) => window.runRescanBench(r, n), [records, rounds] as const),
  );
  const rate = (ms: number) => `${Math.round((records / ms) * 1000).toLocaleString('en-US')} rows/s`;
  const line = (label: string, pick: (r: RescanRound) => number) => {
    const ratio = median(result.map((r) => r.raw / pick(r)));
    return (
      `${label.padEnd(34)} ${rate(median(result.map(pick))).padStart(16)}  raw bulkPut ${rate(median(result.map((r) => r.raw))).padStart(16)}  ` +
      `ratio ${ratio.toFixed(2)} (goal >= 0.60)`
    );
  };
  console.log(
    `rescan into Chromium ${version} IndexedDB, ${records} records in pages of 500, median of ${rounds} round${rounds === 1 ? '' : 's'}${quick ? ' (--quick)' : ''}`,
  );
  console.log(line('bootstrap (empty database)', (r) => r.bootstrap));
  console.log(line('rescan (staged, 100 pending writes)', (r) => r.rescan));
  console.log(line('rescan, every record changed', (r) => r.rescanChanged));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
