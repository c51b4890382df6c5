/**
 * Closing an engine raises no uncaught error in the page, in any state
 * (PROTOCOL.md section 6, "Closing"): never started, a tab following another
 * one's leader, mid-run, twice; each with a write not awaited before close().
 * Debian's Chromium against the real gateway, listening for `pageerror`.
 */
import { describe, expect, it } from 'vitest';
import { chromiumPagePerFile } from './support/chromium-page.js';

const { server, browser } = chromiumPagePerFile(new URL('./support/close-page.ts', import.meta.url));

describe('Chromium: closing an engine', () => {
  it('raises no page error in any state: never started, follower, mid-run, twice', async () => {
    const token = await server().token('alice');
    const workspaceId = await server().createWorkspace(token);
    const page = await (await browser().newContext()).newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`${server().baseUrl}/`);
    const steps = await page.evaluate(([url, t, ws]) => window.closeInEveryState(url, t, ws), [server().baseUrl, token, workspaceId] as const);
    expect(steps).toEqual(['never started', 'follower (leader: true, follower led: false)', 'mid-run', 'closed twice']);
    expect(pageErrors).toEqual([]);
  });
});
