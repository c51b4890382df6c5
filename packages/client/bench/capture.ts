/**
 * Cost of capture (figure P4): 10 000 single puts and one 10 000-row bulkPut
 * with the sync engine's capture ÷ the same writes without it, on
 * fake-indexeddb in Node (default) or on the real IndexedDB of Chromium
 * (`--chromium`, driven by playwright-core; `CHROMIUM` names the binary,
 * `/usr/bin/chromium` by default). The ratio printed is the median of the
 * rounds' ratios; in Node, the CPU-time ratio is printed too (it shrugs off
 * other load on the machine). Each round also measures the protocol's floor
 * in raw IndexedDB (no Dexie): the row alone against the row plus what
 * PROTOCOL.md section 6 makes capture write with it (the outbox op carrying
 * the row, the clock state), so the capture ratio can be read against the
 * least any implementation of the protocol could cost.
 *
 *   npm run bench -w packages/client                         # Node, 10 000 rows, 5 rounds
 *   npm run bench -w packages/client -- --chromium           # Chromium, 10 000 rows, 3 rounds
 *   npm run bench -w packages/client -- --quick [--chromium] # 1 000 rows, 1 round: a smoke run
 *   npm run bench -w packages/client -- --rounds 9
 *   npm run bench -w packages/client -- --chromium --results ../../bench/RESULTS.md  # as bench/run does
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { inChromium, median } from './chromium.js';
import { resultsPath, writeFigureBlock, type FigureRow } from './results.js';
import { runCaptureRounds, type CaptureRound, type Timing } from './capture-rounds.js';

const quick = process.argv.includes('--quick');
const useChromium = process.argv.includes('--chromium');
const rows = quick ? 1_000 : 10_000;
const roundsArg = process.argv.indexOf('--rounds');
const rounds = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : quick ? 1 : useChromium ? 3 : 5;

function inNode(): Promise<CaptureRound[]> {
  return runCaptureRounds(
    {
      indexedDB: () => new IDBFactory(),
      IDBKeyRange,
      cpuTime: () => {
        const used = process.cpuUsage();
        return (used.user + used.system) / 1000;
      },
    },
    rows,
    rounds,
  );
}

async function chromium(): Promise<{ result: CaptureRound[]; version: string }> {
  return inChromium(new URL('./capture-page.ts', import.meta.url), (page) =>
    page.evaluate(([r, n]) => window.runCaptureBench(r, n), [rows, rounds] as const),
  );
}

const ms = (x: number) => `${x.toFixed(0)} ms`;

/** The median over rounds of `after / before` (wall time). */
function medianRatio(results: CaptureRound[], pick: (r: CaptureRound) => [Timing, Timing]): number {
  return median(
    results.map((r) => {
      const [before, after] = pick(r);
      return after.wall / before.wall;
    }),
  );
}

function line(label: string, results: CaptureRound[], pick: (r: CaptureRound) => [Timing, Timing]): string {
  const without = results.map((r) => pick(r)[0]);
  const withCapture = results.map((r) => pick(r)[1]);
  let text =
    `${label.padEnd(24)} without ${ms(median(without.map((t) => t.wall))).padStart(8)}  with ${ms(median(withCapture.map((t) => t.wall))).padStart(8)}  ` +
    `ratio ${`${medianRatio(results, pick).toFixed(2)}x`.padStart(6)}`;
  if ([...without, ...withCapture].every((t) => t.cpu !== null)) {
    const cpu = median(results.map((r) => pick(r)[1].cpu! / pick(r)[0].cpu!));
    text += `  (CPU time: ${ms(median(without.map((t) => t.cpu!)))} vs ${ms(median(withCapture.map((t) => t.cpu!)))}, ratio ${cpu.toFixed(2)}x)`;
  }
  return text;
}

const SINGLE = (r: CaptureRound): [Timing, Timing] => [r.plainSingle, r.capturedSingle];
const BULK = (r: CaptureRound): [Timing, Timing] => [r.plainBulk, r.capturedBulk];
const FLOOR_SINGLE = (r: CaptureRound): [Timing, Timing] => [r.floor.rowSingle, r.floor.protocolSingle];
const FLOOR_BULK = (r: CaptureRound): [Timing, Timing] => [r.floor.rowBulk, r.floor.protocolBulk];

/** Capture's ratio ÷ the floor's, per round, median: 1.00 means capture costs what the protocol's writes cost. */
function overFloor(results: CaptureRound[], capture: typeof SINGLE, floor: typeof SINGLE): number {
  return median(results.map((r) => medianRatio([r], capture) / medianRatio([r], floor)));
}

function report(where: string, results: CaptureRound[]): void {
  console.log(
    `capture cost on ${where}, ${rows} rows, median of ${rounds} round${rounds === 1 ? '' : 's'}${quick ? ' (--quick)' : ''}`,
  );
  console.log(line(`${rows} single puts`, results, SINGLE));
  console.log(line(`one ${rows}-row bulkPut`, results, BULK));
  console.log("the protocol's floor, raw IndexedDB: the row alone vs the row + its outbox op + the clock state, one transaction");
  console.log(line(`  ${rows} single writes`, results, FLOOR_SINGLE));
  console.log(line(`  one ${rows}-row write`, results, FLOOR_BULK));
  console.log(
    `capture's ratio over the floor's: single ${overFloor(results, SINGLE, FLOOR_SINGLE).toFixed(2)}x, ` +
      `bulk ${overFloor(results, BULK, FLOOR_BULK).toFixed(2)}x`,
  );
}

/** The P4 block of RESULTS.md. */
function record(path: string, version: string, results: CaptureRound[]): void {
  const row = (figure: string, pick: typeof SINGLE, baseline: string, goal: number | null): FigureRow => {
    const ratio = medianRatio(results, pick);
    return {
      figure,
      measured: ms(median(results.map((r) => pick(r)[1].wall))),
      baseline: `${ms(median(results.map((r) => pick(r)[0].wall)))} (${baseline})`,
      ratio,
      goal: goal === null ? '—' : `ratio ≤ ${goal.toFixed(2)}`,
      pass: goal === null ? null : ratio <= goal,
    };
  };
  const dexie = 'the same writes into the same Dexie schema without the engine';
  writeFigureBlock(
    path,
    'P4',
    `cost of capture, Chromium ${version} IndexedDB, ${rows} rows, median of ${rounds} rounds`,
    `npm run bench -w packages/client -- --chromium${quick ? ' --quick' : ''}`,
    [
      row(`${rows} single puts with capture`, SINGLE, dexie, 1.2),
      row(`one ${rows}-row bulkPut with capture`, BULK, dexie, 1.3),
      row(`floor: ${rows} single writes, row + outbox op + clock state, raw IndexedDB`, FLOOR_SINGLE, 'the row alone, raw IndexedDB', null),
      row(`floor: one ${rows}-row write, rows + outbox ops + clock state, raw IndexedDB`, FLOOR_BULK, 'the rows alone, raw IndexedDB', null),
    ],
    [
      `Capture's ratio over the floor's (1.00: capture costs exactly what PROTOCOL.md section 6 makes it write): single ${overFloor(results, SINGLE, FLOOR_SINGLE).toFixed(2)}, bulk ${overFloor(results, BULK, FLOOR_BULK).toFixed(2)}.`,
    ],
  );
}

async function main() {
  if (useChromium) {
    const { result, version } = await chromium();
    report(`Chromium ${version} IndexedDB`, result);
    const path = resultsPath(process.argv);
    if (path) record(path, version, result);
  } else {
    report(`fake-indexeddb (Node ${process.version})`, await inNode());
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
