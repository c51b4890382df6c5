/**
 * Closing an engine raises no uncaught error in the page, in any state
 * (PROTOCOL.md section 6, "Closing"): never started, a tab following another
 * one's leader, mid-run, twice; each with a write not awaited before close().
 * Debian's Chromium against the real gateway, listening for `pageerror`.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundlePage, launchChromium } from '../bench/chromium.js';
import { startServer, type TestServer } from './support/server.js';

let server: TestServer;
let browser: Browser;
let staticDir: string;

beforeAll(async () => {
  const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(chromium)) throw new Error(`no Chromium at ${chromium}: apt-get install -y chromium (or set CHROMIUM)`);
  staticDir = mkdtempSync(join(tmpdir(), 'or3-close-page-'));
  writeFileSync(join(staticDir, 'index.html'), await bundlePage(new URL('./support/close-page.ts', import.meta.url)));
  server = await startServer(['--static-dir', staticDir]);
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  if (staticDir) rmSync(staticDir, { recursive: true, force: true });
});

describe('Chromium: closing an engine', () => {
  it('raises no page error in any state: never started, follower, mid-run, twice', async () => {
    const token = await server.token('alice');
    const workspaceId = await server.createWorkspace(token);
    const page = await (await browser.newContext()).newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`${server.baseUrl}/`);
    const steps = await page.evaluate(([url, t, ws]) => window.closeInEveryState(url, t, ws), [server.baseUrl, token, workspaceId] as const);
    expect(steps).toEqual(['never started', 'follower (leader: true, follower led: false)', 'mid-run', 'closed twice']);
    expect(pageErrors).toEqual([]);
  });
});
