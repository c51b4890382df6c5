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
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { inChromium, median } from './chromium.js';
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

function report(where: string, results: CaptureRound[]): void {
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  const ratio = (without: number[], withCapture: number[]) =>
    `${median(without.map((w, i) => withCapture[i]! / w)).toFixed(2)}x`;
  const line = (label: string, without: Timing[], withCapture: Timing[]) => {
    const wall = [without.map((t) => t.wall), withCapture.map((t) => t.wall)] as const;
    let text =
      `${label.padEnd(24)} without ${ms(median(wall[0])).padStart(8)}  with ${ms(median(wall[1])).padStart(8)}  ` +
      `ratio ${ratio(...wall).padStart(6)}`;
    if (without.every((t) => t.cpu !== null) && withCapture.every((t) => t.cpu !== null)) {
      const cpu = [without.map((t) => t.cpu!), withCapture.map((t) => t.cpu!)] as const;
      text += `  (CPU time: ${ms(median(cpu[0]))} vs ${ms(median(cpu[1]))}, ratio ${ratio(...cpu)})`;
    }
    return text;
  };
  console.log(
    `capture cost on ${where}, ${rows} rows, median of ${rounds} round${rounds === 1 ? '' : 's'}${quick ? ' (--quick)' : ''}`,
  );
  console.log(line(`${rows} single puts`, results.map((r) => r.plainSingle), results.map((r) => r.capturedSingle)));
  console.log(line(`one ${rows}-row bulkPut`, results.map((r) => r.plainBulk), results.map((r) => r.capturedBulk)));
  console.log('the protocol\'s floor, raw IndexedDB: the row alone vs the row + its outbox op + the clock state, one transaction');
  console.log(line(`  ${rows} single writes`, results.map((r) => r.floor.rowSingle), results.map((r) => r.floor.protocolSingle)));
  console.log(line(`  one ${rows}-row write`, results.map((r) => r.floor.rowBulk), results.map((r) => r.floor.protocolBulk)));
  const overFloor = (pick: (r: CaptureRound) => [Timing, Timing, Timing, Timing]) =>
    median(
      results.map((r) => {
        const [plain, captured, row, protocol] = pick(r);
        return captured.wall / plain.wall / (protocol.wall / row.wall);
      }),
    ).toFixed(2);
  console.log(
    `capture's ratio over the floor's: single ${overFloor((r) => [r.plainSingle, r.capturedSingle, r.floor.rowSingle, r.floor.protocolSingle])}x, ` +
      `bulk ${overFloor((r) => [r.plainBulk, r.capturedBulk, r.floor.rowBulk, r.floor.protocolBulk])}x`,
  );
}

async function main() {
  if (useChromium) {
    const { result, version } = await chromium();
    report(`Chromium ${version} IndexedDB`, result);
  } else {
    report(`fake-indexeddb (Node ${process.version})`, await inNode());
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
