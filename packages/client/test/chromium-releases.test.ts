/**
 * End to end in Debian's Chromium (`CHROMIUM`, `/usr/bin/chromium` by
 * default) against the real gateway: an app's releases and the server's
 * `--tables` change under running devices (issue 26). Each device is a
 * browser context of its own (its own IndexedDB); the app is
 * `support/release-page.ts`.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { chromiumPagePerFile } from './support/chromium-page.js';
import type { Release } from './support/release-page.js';

const DEFAULT_TABLES = 'threads,messages,projects,posts,kv,file_meta,notifications';
const BASE: Release = { schema: { threads: 'id', messages: 'id, thread_id' }, version: 1, synced: ['threads', 'messages'] };
const serve = (staticDir: string, tables: string) => ['--static-dir', staticDir, '--tables', tables];
const { server, browser, staticDir } = chromiumPagePerFile(new URL('./support/release-page.ts', import.meta.url), (dir) =>
  serve(dir, `${DEFAULT_TABLES},tags`),
);

/** A device of `userId` in `workspaceId`: its page, and `open(release)` to run that release of the app. */
async function device(workspaceId: string, userId: string) {
  const context = await browser().newContext();
  const page: Page = await context.newPage();
  await page.goto(`${server().baseUrl}/`);
  const token = await server().token(userId);
  return {
    page,
    open: (release: Release) => page.evaluate(([url, t, ws, r]) => window.app.open(url, t, ws, r), [server().baseUrl, token, workspaceId, release] as const),
  };
}

async function workspace(): Promise<string> {
  const owner = await server().token('alice');
  const workspaceId = await server().createWorkspace(owner);
  await server().addMember(owner, workspaceId, 'bob', 'editor');
  return workspaceId;
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('Chromium: releases and the server configuration change', () => {
  it('writes rejected unknown_table reach the server and the other device with no app call once the server syncs the table', async () => {
    const workspaceId = await workspace();
    const notes: Release = { ...BASE, schema: { ...BASE.schema, notes: 'id' }, synced: [...BASE.synced, 'notes'] };
    const alice = await device(workspaceId, 'alice');
    await alice.open(notes);
    await alice.page.evaluate(() => window.app.put('notes', { id: 'n1', text: 'kept' }));
    await alice.page.evaluate(() => window.app.sync());
    expect(await alice.page.evaluate(() => window.app.ops('held'))).toMatchObject([{ pk: 'n1', code: 'unknown_table' }]);
    await alice.page.evaluate(() => window.app.start());
    await waitFor(async () => (await alice.page.evaluate(() => window.app.status().channel)) === 'up', 'alice subscribes');
    expect(await alice.page.evaluate(() => window.app.status())).toMatchObject({ state: 'held', held: 1, lastError: { code: 'unknown_table' } });

    await server().restart(undefined, serve(staticDir(), `${DEFAULT_TABLES},tags,notes`));
    const bob = await device(workspaceId, 'bob');
    await bob.open(notes);
    await bob.page.evaluate(() => window.app.start());
    await waitFor(async () => (await bob.page.evaluate(() => window.app.rows('notes'))).length === 1, 'bob receives the note');
    expect(await bob.page.evaluate(() => window.app.rows('notes'))).toMatchObject([{ id: 'n1', text: 'kept' }]);
    await waitFor(async () => (await alice.page.evaluate(() => window.app.status().state)) === 'synced', 'alice is synced');
    await server().restart(undefined, serve(staticDir(), `${DEFAULT_TABLES},tags`));
  });

  it('a failed never-synced create: discarding keeps the row, restoring the server copy removes it, retrying pushes it', async () => {
    const workspaceId = await workspace();
    const alice = await device(workspaceId, 'alice');
    await alice.open({ ...BASE, maxPayloadBytes: 200 });
    const big = { id: 'big', title: 'x'.repeat(300) };
    const failOnce = async () => {
      await alice.page.evaluate(([row]) => window.app.put('threads', row), [big] as const);
      await alice.page.evaluate(() => window.app.sync());
      const [failed] = await alice.page.evaluate(() => window.app.ops('failed'));
      expect(failed).toMatchObject({ pk: 'big', code: 'payload_too_large' });
      return failed!.opId;
    };
    const threads = () => alice.page.evaluate(() => window.app.rows('threads'));

    const discarded = await failOnce();
    await alice.page.evaluate(([id]) => window.app.discard(id), [discarded] as const);
    expect(await threads()).toMatchObject([big]);
    const restored = await failOnce();
    await alice.page.evaluate(([id]) => window.app.restore(id), [restored] as const);
    expect(await threads()).toEqual([]);

    const retried = await failOnce();
    expect(await alice.page.evaluate(() => window.app.status())).toMatchObject({ state: 'attention', lastError: { code: 'payload_too_large' } });
    await alice.page.evaluate(() => window.app.close());
    await alice.open(BASE);
    await alice.page.evaluate(([id]) => window.app.retry(id), [retried] as const);
    expect(await alice.page.evaluate(() => window.app.sync())).toBeNull();
    const token = await server().token('alice');
    const record = await server().api<{ payload: { title: string } }>(token, 'GET', `/v1/workspaces/${workspaceId}/records/threads/big`);
    expect(record.body.payload.title).toBe(big.title);
  });

  for (const bump of [false, true]) {
    it(`device B moving to a release that syncs a new table receives the rows A wrote before (${bump ? 'with' : 'without'} a Dexie version bump)`, async () => {
      const workspaceId = await workspace();
      const tags: Release = { ...BASE, schema: { ...BASE.schema, tags: 'id' }, synced: [...BASE.synced, 'tags'] };
      const alice = await device(workspaceId, 'alice');
      const bob = await device(workspaceId, 'bob');
      await alice.open(tags);
      await bob.open(BASE);
      await bob.page.evaluate(() => window.app.sync());
      await alice.page.evaluate(() => window.app.put('tags', { id: 't1', name: 'red' }));
      await alice.page.evaluate(() => window.app.put('threads', { id: 'th1' }));
      await alice.page.evaluate(() => window.app.sync());
      await bob.page.evaluate(() => window.app.sync());
      expect(await bob.page.evaluate(() => window.app.rows('threads'))).toMatchObject([{ id: 'th1' }]);
      await bob.page.evaluate(() => window.app.close());

      await bob.open({ ...tags, version: bump ? 2 : 1 });
      expect(await bob.page.evaluate(() => window.app.sync())).toBeNull();
      expect(await bob.page.evaluate(() => window.app.rows('tags'))).toMatchObject([{ id: 't1', name: 'red' }]);
    });
  }
});
