/**
 * People sharing one browser, end to end: the demo in Debian's Chromium
 * against the real or3-sync binary. One browser context is the shared
 * browser (one IndexedDB); alice and bob take turns on it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext } from 'playwright-core';
import { launchChromium, newDevice } from './support/browser.js';
import { ChatPage } from './support/chat-page.js';
import { startServer, type DemoServer } from './support/server.js';
import { until } from './support/until.js';

let server: DemoServer;
let browser: Browser;
const contexts: BrowserContext[] = [];

before(async () => {
  server = await startServer();
  browser = await launchChromium();
});

after(async () => {
  for (const context of contexts) await context.close().catch(() => {});
  await browser?.close();
  await server?.stop();
});

/** A tab of `context` where `user` signs in. */
async function signedIn(context: BrowserContext, user: string): Promise<ChatPage> {
  const page = await ChatPage.open(context, user);
  await page.signIn();
  return page;
}

describe('users of one browser', () => {
  test("alice signs out, bob signs in: nothing of alice's private workspace reaches bob's screen or IndexedDB; alice finds her data again", async () => {
    const shared = await newDevice(browser, server.baseUrl);
    contexts.push(shared);
    const alice = await signedIn(shared, 'alice');
    const workspaceId = await alice.createWorkspace('Alice private');
    await alice.send('alice secret plan');
    await alice.waitAllSynced();
    const chatPath = new URL(alice.page.url()).hash;

    await alice.signOut();
    assert.deepEqual(await alice.storedRecordsWith('alice secret plan'), []);
    assert.ok(!(await alice.databases()).includes(`or3-db-${workspaceId}`), 'her workspace database is deleted');
    await alice.page.close();

    // bob, on the same browser, lands on alice's workspace (as a remembered link would take him).
    const bob = await signedIn(shared, 'bob');
    await bob.page.goto(`/${chatPath}`);
    await bob.waitForChat();
    await until(async () => (await bob.networkState()) === 'not-synced', 'bob is refused the workspace');
    assert.equal(await bob.page.getByText('alice secret plan').count(), 0);
    assert.deepEqual(await bob.storedRecordsWith('alice secret plan'), []);
    assert.deepEqual(await bob.storedRecordsWith('Alice private'), []);
    await bob.screenshot('users-1-bob-sees-nothing');
    await bob.signOut();
    await bob.page.close();

    // alice again: her workspace and message come back from the server.
    const back = await signedIn(shared, 'alice');
    await back.openWorkspaceNamed('Alice private');
    await back.message('alice secret plan').waitFor({ timeout: 30_000 });
    await back.screenshot('users-2-alice-is-back');
  });

  test('sign-out with a write that did not sync asks first: kept for her next sign-in, it reaches the server then', async () => {
    const shared = await newDevice(browser, server.baseUrl);
    contexts.push(shared);
    const alice = await signedIn(shared, 'alice');
    const workspaceId = await alice.createWorkspace('Alice notes');
    await alice.waitAllSynced();
    // Nothing of the new workspace waits to be pushed (its first thread too) before the network goes.
    await until(async () => (await alice.networkState()) === 'online', 'alice: the chip says online', 30_000);
    await shared.setOffline(true);
    await alice.send('written offline');
    await alice.signOut();
    assert.equal(await alice.answerSignOut('Keep them for my next sign-in'), 1);
    // What stays is the held write only, for her: no row of her workspace is readable.
    const kept = await alice.storedRecordsWith('written offline');
    assert.deepEqual(kept.map((k) => k.store), ['_or3sync_outbox']);
    await shared.setOffline(false);
    await alice.page.close();

    const back = await signedIn(shared, 'alice');
    await back.openWorkspaceNamed('Alice notes');
    await back.message('written offline').waitFor({ timeout: 30_000 });
    await back.waitAllSynced();
    const onServer = await server.snapshot(workspaceId, 'alice');
    assert.ok(onServer.some((r) => r.table_name === 'messages' && (r.payload as { text?: string }).text === 'written offline'));
  });
});
