/**
 * A minimal Nuxt 3 app on this module (test/fixture), generated with
 * `nuxi generate` and served by the real or3-sync binary, in Debian's
 * Chromium: two devices see each other's notes, the status says synced
 * over a WebSocket, and the gateway URL comes from runtimeConfig.public.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../../demo/test/support/browser.js';
import { addNoteAndSee, openNotesDevices } from '../../demo/test/support/notes-app.js';
import { startServer, type DemoServer } from '../../demo/test/support/server.js';
import { until } from '../../demo/test/support/until.js';

const fixtureDir = fileURLToPath(new URL('./fixture', import.meta.url));
const repoDir = fileURLToPath(new URL('../../..', import.meta.url));
// The server starts first (the build needs its URL) on an empty folder; the generated site is copied in.
const siteDir = mkdtempSync(join(tmpdir(), 'or3-nuxt-site-'));

let server: DemoServer;
let browser: Browser;

before(async () => {
  // The module and the packages it imports, as an app installs them: from dist/.
  execFileSync('node', [join(repoDir, 'scripts/build-packages.mjs')], { stdio: 'inherit' });
  server = await startServer(siteDir);
  const started = Date.now();
  // The root named: npx runs from the nearest package.json's folder (packages/nuxt), not from cwd.
  execFileSync('npx', ['nuxi', 'generate', fixtureDir, '--logLevel', 'warn'], {
    cwd: fixtureDir,
    stdio: 'inherit',
    env: { ...process.env, NUXT_PUBLIC_OR3_SYNC_BASE_URL: server.baseUrl, NUXT_TELEMETRY_DISABLED: '1' },
  });
  console.log(`nuxi generate took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  cpSync(join(fixtureDir, '.output', 'public'), siteDir, { recursive: true });
  browser = await launchChromium();
}, { timeout: 300_000 });

after(async () => {
  await browser?.close();
  await server?.stop();
  rmSync(siteDir, { recursive: true, force: true });
});

test('two devices of a Nuxt app sync notes through the gateway', { timeout: 120_000 }, async () => {
  const workspaceId = await server.createWorkspace('nuxt notes', 'nina');
  const [first, second] = (await openNotesDevices(browser, server.baseUrl, 'nina', workspaceId)) as [Page, Page];
  await addNoteAndSee(first, second, 'hello from device 1');
  await until(async () => (await second.getByTestId('realtime').textContent()) === 'websocket', 'the change came over a WebSocket');
  assert.equal(await first.locator('li.note').count(), 1);
  // The module's key in runtimeConfig.public took the URL from NUXT_PUBLIC_OR3_SYNC_BASE_URL (Nuxt fills only known keys).
  assert.equal(await first.evaluate('window.__NUXT__.config.public.or3Sync.baseUrl'), server.baseUrl);
});
