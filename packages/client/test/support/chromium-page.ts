/**
 * The hooks of a test file that runs an app page in Debian's Chromium (`CHROMIUM`,
 * `/usr/bin/chromium` by default) against the real gateway: the page bundled into a
 * static folder the gateway serves, one gateway and one browser for the file.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { bundlePage, launchChromium } from '../../bench/chromium.js';
import { startServer, type TestServer } from './server.js';

/**
 * Bundles `page` (a module URL) as the gateway's `index.html` and starts the gateway with
 * `serverArgs(staticDir)` (by default `--static-dir` alone) and Chromium in `beforeAll`;
 * stops both and removes the folder in `afterAll`. Without Chromium it fails, saying how to
 * install it (`.ci/run` does).
 */
export function chromiumPagePerFile(
  page: URL,
  serverArgs: (staticDir: string) => string[] = (staticDir) => ['--static-dir', staticDir],
): { server: () => TestServer; browser: () => Browser; staticDir: () => string } {
  let server: TestServer | undefined;
  let browser: Browser | undefined;
  let staticDir: string | undefined;
  beforeAll(async () => {
    const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
    if (!existsSync(chromium)) throw new Error(`no Chromium at ${chromium}: apt-get install -y chromium (or set CHROMIUM)`);
    staticDir = mkdtempSync(join(tmpdir(), `or3-${basename(page.pathname, '.ts')}-`));
    writeFileSync(join(staticDir, 'index.html'), await bundlePage(page));
    server = await startServer(serverArgs(staticDir));
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (staticDir) rmSync(staticDir, { recursive: true, force: true });
  });
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the page, gateway and browser start in beforeAll');
    return value;
  };
  return { server: () => ready(server), browser: () => ready(browser), staticDir: () => ready(staticDir) };
}
