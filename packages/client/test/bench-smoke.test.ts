/** The client benchmarks' smoke runs (`--quick`), so that they do not rot: capture (P4) on fake-indexeddb and in Chromium, rescan (P5), first sync (P9), adoption (P10) and write→visible between two devices (P11) in Chromium. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const packageDir = fileURLToPath(new URL('..', import.meta.url));

async function bench(...args: string[]): Promise<string> {
  return benchScript('bench/capture.ts', ...args);
}

async function benchScript(script: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', script, '--quick', ...args], {
    cwd: packageDir,
    timeout: 120_000,
  });
  return stdout;
}

describe('capture benchmark, smoke runs', () => {
  it('runs on fake-indexeddb and prints both ratios', async () => {
    const out = await bench();
    expect(out).toMatch(/1000 single puts .* ratio +\d+\.\d\dx/);
    expect(out).toMatch(/one 1000-row bulkPut .* ratio +\d+\.\d\dx/);
  }, 120_000);

  it('runs in Chromium', async () => {
    const out = await bench('--chromium');
    expect(out).toMatch(/on Chromium [\d.]+ IndexedDB/);
    expect(out).toMatch(/one 1000-row bulkPut .* ratio +\d+\.\d\dx/);
    expect(out).toMatch(/one 1000-row write .* ratio +\d+\.\d\dx/);
    expect(out).toMatch(/capture's ratio over the floor's: single \d+\.\d\dx, bulk \d+\.\d\dx/);
  }, 120_000);
});

describe('rescan benchmark, smoke run', () => {
  it('bootstraps, rescans and checks the result in Chromium', async () => {
    const out = await benchScript('bench/rescan.ts');
    expect(out).toMatch(/rescan into Chromium [\d.]+ IndexedDB, 2000 records/);
    for (const label of ['bootstrap \\(empty database\\)', 'rescan \\(staged, 100 pending writes\\)', 'rescan, every record changed']) {
      expect(out).toMatch(new RegExp(`${label} +[\\d,]+ rows/s +raw bulkPut +[\\d,]+ rows/s +ratio \\d+\\.\\d\\d`));
    }
  }, 120_000);

  it('bootstraps from the real gateway in Chromium', async () => {
    const out = await benchScript('bench/rescan.ts', '--gateway');
    expect(out).toMatch(/bootstrap from the gateway \(.*or3-sync[^)]*\) into Chromium [\d.]+ IndexedDB, 2000 records/);
    expect(out).toMatch(/first sync, end to end over HTTP +[\d,]+ rows\/s +raw bulkPut +[\d,]+ rows\/s +ratio \d+\.\d\d/);
  }, 120_000);
});

describe('adoption benchmark, smoke run', () => {
  it('adopts pre-existing rows into the real gateway from Chromium', async () => {
    const out = await benchScript('bench/adopt.ts');
    expect(out).toMatch(/adoption of 2000 pre-existing rows from Chromium [\d.]+ IndexedDB to the gateway \(.*or3-sync[^)]*\)/);
    expect(out).toMatch(/adoption: attach \+ first sync, every row pushed +[\d,]+ rows\/s +raw read [\d,]+ rows\/s +ratio \d+\.\d{3}/);
  }, 120_000);
});

describe('first-sync benchmark, smoke run', () => {
  it('syncs a fresh device from the real gateway in Chromium and reports rate, heap and long tasks', async () => {
    const out = await benchScript('bench/first-sync.ts');
    expect(out).toMatch(/first sync of 5000 records from the gateway \(.*or3-sync[^)]*\) into Chromium [\d.]+ IndexedDB/);
    expect(out).toMatch(/first sync from the gateway, rows\/s until caught up +[\d,]+ rows\/s +raw bulkPut [\d,]+ rows\/s +ratio \d+\.\d\d/);
    expect(out).toMatch(/against the raw write in chunks [\d,]+ rows\/s +ratio \d+\.\d\d/);
    expect(out).toMatch(/peak JS heap during the sync \d+\.\d MB/);
    expect(out).toMatch(/longest task during the sync \d+ ms, \d+ over 200 ms/);
  }, 120_000);
});

describe('write→visible benchmark, smoke run', () => {
  it('times writes on one Chromium device until the other sees them, beside the bare broadcast floor', async () => {
    const out = await benchScript('bench/visible.ts');
    expect(out).toMatch(/write→visible on another device, the gateway \(.*or3-sync[^)]*\) and two Chromium [\d.]+ contexts over WebSockets, 20 writes 50 ms apart/);
    expect(out).toMatch(/write→visible p50 \d+\.\d+ ms +p99 \d+\.\d+ ms +floor p50 \d+\.\d+ ms +p99 \d+\.\d+ ms/);
    expect(out).toMatch(/stages \(median\): capture .* applied until B's liveQuery returns the row -?\d+\.\d+ ms/);
    expect(out).toMatch(/B's side \(median\): the apply transaction committed \d+\.\d+ ms after .* onChanges resolved -?\d+\.\d+ ms after .* ran its query again -?\d+\.\d+ ms after the commit and returned the row -?\d+\.\d+ ms later/);
  }, 120_000);
});
