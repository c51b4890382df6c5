/**
 * End to end in Debian's Chromium (`CHROMIUM`, `/usr/bin/chromium` by
 * default) against the real gateway: an app used offline before sync
 * existed, then sync is switched on; the rows written before are kept and
 * show up on a second device (another browser context). Without Chromium
 * it fails, saying so (`apt-get install -y chromium`; `.ci/run` installs it).
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { chromiumPagePerFile } from './support/chromium-page.js';

const { server, browser } = chromiumPagePerFile(new URL('./support/adoption-page.ts', import.meta.url));

/** A device: a browser context of its own (its own IndexedDB) with the page open. */
async function device(): Promise<Page> {
  const context = await browser().newContext();
  const page = await context.newPage();
  await page.goto(`${server().baseUrl}/`);
  return page;
}

describe('Chromium: sync switched on over data written before', () => {
  it('keeps the rows written before sync and shows them on a second device', async () => {
    const token = await server().token('alice');
    const workspaceId = await server().createWorkspace(token);
    const first = await device();
    await first.evaluate(([ws]) => window.seedBeforeSync(ws, 25), [workspaceId] as const);
    // A reload: the app's next version ships with sync.
    await first.reload();
    const enabled = await first.evaluate(([url, t, ws]) => window.enableSync(url, t, ws), [server().baseUrl, token, workspaceId] as const);
    expect(enabled).toEqual({ error: null, pending: 0 });
    const kept = await first.evaluate(([ws]) => window.rows(ws, 'threads'), [workspaceId] as const);
    expect(kept).toHaveLength(25);
    expect(await first.evaluate(([ws]) => window.rows(ws, 'kv'), [workspaceId] as const)).toMatchObject([{ id: 'secret', value: 'stays here' }]);

    const second = await device();
    expect(await second.evaluate(([url, t, ws]) => window.enableSync(url, t, ws), [server().baseUrl, token, workspaceId] as const)).toEqual({
      error: null,
      pending: 0,
    });
    const threads = await second.evaluate(([ws]) => window.rows(ws, 'threads'), [workspaceId] as const);
    expect(threads.map((t) => t.title).sort()).toEqual(kept.map((t) => t.title).sort());
    expect(await second.evaluate(([ws]) => window.rows(ws, 'messages'), [workspaceId] as const)).toMatchObject([
      { id: 'before-m0', content: 'hello from before sync' },
    ]);
    expect(await second.evaluate(([ws]) => window.rows(ws, 'kv'), [workspaceId] as const)).toEqual([]);
  });
});
