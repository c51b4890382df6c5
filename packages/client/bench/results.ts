/**
 * Writes a client figure (P4, P5, P9, P10, P11) into `bench/RESULTS.md` next to the
 * gateway's, when a benchmark runs with `--results FILE` (`bench/run` passes
 * it): one block per figure, placed before the marker that ends the
 * generated part and replaced in place by the next run of the same figure.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

const GENERATED_END = '<!-- end of generated results: notes below this line are kept by bench/run -->';

/** One row of the figure table. */
export interface FigureRow {
  figure: string;
  measured: string;
  baseline: string;
  ratio: number;
  /** E.g. `ratio ≥ 0.60`. */
  goal: string;
  pass: boolean | null;
}

/** The `--results FILE` argument, if any. */
export function resultsPath(argv: string[]): string | null {
  const at = argv.indexOf('--results');
  return at > 0 ? (argv[at + 1] ?? null) : null;
}

/**
 * The size flags of a row-rate benchmark: `--quick` (2 000 rows, 1 round), else `--records` (100 000) and `--rounds` (3);
 * a benchmark may change those defaults.
 */
export function sizeFlags(
  argv: string[],
  defaults: { records?: number; rounds?: number; quickRecords?: number } = {},
): { quick: boolean; records: number; rounds: number; rate: (ms: number) => string } {
  const flag = (name: string) => {
    const at = argv.indexOf(name);
    return at > 0 ? Number(argv[at + 1]) : null;
  };
  const quick = argv.includes('--quick');
  const records = flag('--records') ?? (quick ? (defaults.quickRecords ?? 2_000) : (defaults.records ?? 100_000));
  const rounds = flag('--rounds') ?? (quick ? 1 : (defaults.rounds ?? 3));
  return { quick, records, rounds, rate: (ms) => `${Math.round((records / ms) * 1000).toLocaleString('en-US')} rows/s` };
}

/** Replaces (or adds) the block of figure `id` in `path`. */
export function writeFigureBlock(path: string, id: string, heading: string, command: string, rows: FigureRow[], notes: string[]): void {
  const start = `<!-- client figure ${id} -->`;
  const end = `<!-- end client figure ${id} -->`;
  const loadavg = existsSync('/proc/loadavg') ? readFileSync('/proc/loadavg', 'utf8').split(' ')[0] : 'unknown';
  const lines = [
    start,
    `### ${id}: ${heading}`,
    '',
    `- Command: \`${command}\`; ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; load average (1 min) at the end ${loadavg}; ${gitRevision()}`,
    ...notes.map((note) => `- ${note}`),
    '',
    '| id | figure | measured | baseline (same run) | ratio | goal | result |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) => `| ${id} | ${r.figure} | ${r.measured} | ${r.baseline} | ${r.ratio.toFixed(2)} | ${r.goal} | ${r.pass === null ? '—' : r.pass ? 'PASS' : 'MISS'} |`,
    ),
    end,
    '',
  ].join('\n');
  let text = existsSync(path) ? readFileSync(path, 'utf8') : `# or3-sync benchmark results\n\n${GENERATED_END}\n`;
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from >= 0 && to > from) {
    text = text.slice(0, from) + lines + text.slice(to + end.length).replace(/^\n/, '');
  } else {
    const marker = text.indexOf(GENERATED_END);
    const at = marker >= 0 ? marker : text.length;
    text = `${text.slice(0, at)}${lines}\n${text.slice(at)}`;
  }
  writeFileSync(path, text);
}

function gitRevision(): string {
  try {
    return `at ${execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()}`;
  } catch {
    return 'revision unknown';
  }
}
