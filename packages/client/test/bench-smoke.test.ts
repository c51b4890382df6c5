/** The capture benchmark's smoke runs (`--quick`), so that it does not rot: on fake-indexeddb and in Chromium. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const packageDir = fileURLToPath(new URL('..', import.meta.url));

async function bench(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/capture.ts', '--quick', ...args], {
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
  }, 120_000);
});
