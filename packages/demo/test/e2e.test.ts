/**
 * End-to-end: the demo in Debian's Chromium against the real or3-sync binary
 * (dev auth, fresh SQLite), serving the demo's build. Each browser context is
 * one device. Every scenario ends with a screenshot under `test-artifacts/`.
 *
 * Waits poll for conditions with deadlines (the provider may poll or push in
 * real time), never fixed sleeps.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext } from 'playwright-core';
import { launchChromium, newDevice } from './support/browser.js';
import { ChatPage, type ShownMessage } from './support/chat-page.js';
import { startServer, type DemoServer, type ServerRecord } from './support/server.js';
import { cutSocketPushes, SyncTraffic } from './support/sync-traffic.js';
import { until } from './support/until.js';

let server: DemoServer;
let browser: Browser;
const contexts: BrowserContext[] = [];

before(async () => {
  server = await startServer();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A new device (browser context) with one tab open on the app. */
async function device(user: string): Promise<ChatPage> {
  const context = await newDevice(browser, server.baseUrl);
  contexts.push(context);
  return ChatPage.open(context, user);
}

/**
 * `owner` creates a workspace, invites the others and starts a thread; the
 * others sign in on their own devices, join by id and open the thread.
 */
async function workspaceWith(owner: string, ...members: string[]) {
  const ownerPage = await device(owner);
  await ownerPage.signIn();
  const workspaceId = await ownerPage.createWorkspace(`${owner}'s team`);
  for (const member of members) await ownerPage.invite(member);
  await ownerPage.createThread('general');
  const memberPages: ChatPage[] = [];
  for (const member of members) {
    const page = await device(member);
    await page.signIn();
    await page.joinWorkspace(workspaceId);
    await page.openThread('general');
    memberPages.push(page);
  }
  const threadId = ownerPage.threadId();
  assert.ok(threadId, 'the owner has a thread open');
  return { workspaceId, threadId, owner: ownerPage, members: memberPages };
}

/** The thread's live messages on the server, in the protocol's display order `(index, order_key, id)`. */
async function serverThread(workspaceId: string, threadId: string, asUser: string): Promise<ServerRecord[]> {
  const records = await server.snapshot(workspaceId, asUser);
  const key = (r: ServerRecord) => r.payload as { thread_id: string; index: number; order_key: string };
  return records
    .filter((r) => r.table_name === 'messages' && !r.deleted && key(r).thread_id === threadId)
    .sort((a, b) => {
      const x = key(a);
      const y = key(b);
      if (x.index !== y.index) return x.index - y.index;
      if (x.order_key !== y.order_key) return x.order_key < y.order_key ? -1 : 1;
      return a.pk < b.pk ? -1 : a.pk > b.pk ? 1 : 0;
    });
}

/** Waits until every page shows the same messages, all synced, matching the server in content and order. */
async function converged(pages: ChatPage[], workspaceId: string, threadId: string): Promise<ShownMessage[]> {
  return until(
    async () => {
      const shown = await Promise.all(pages.map((p) => p.messages()));
      const first = shown[0]!;
      if (!first.every((m) => m.state === 'synced')) return false;
      for (const other of shown.slice(1)) assert.deepEqual(other, first);
      const onServer = await serverThread(workspaceId, threadId, pages[0]!.user);
      assert.deepEqual(
        first.map((m) => [m.id, m.text]),
        onServer.map((r) => [r.pk, (r.payload as { text: string }).text]),
      );
      return first;
    },
    'every device shows the server thread, in order, all synced',
  );
}

describe('or3 chat in Chromium', () => {
  after(async () => {
    for (const context of contexts) await context.close().catch(() => {});
  });

  test('two devices in one workspace see each message, in the same order', async () => {
    const alice = await device('alice');
    await alice.page.getByLabel('Your name').waitFor();
    await alice.screenshot('0-sign-in');
    await alice.signIn();
    const workspaceId = await alice.createWorkspace('Lunch club');
    // A new workspace opens on a first thread, ready to type in.
    await alice.page.getByRole('heading', { name: 'General', exact: true }).waitFor();
    await until(async () => (await alice.page.evaluate(() => document.activeElement?.id)) === 'composer', 'the composer has the focus');
    await until(async () => (await alice.networkState()) === 'online', 'the owner’s workspace syncs');
    await alice.screenshot('0-new-workspace');
    await alice.createThread('general');
    const threadId = alice.threadId()!;

    // Joining before the owner's invite is refused, and says so, never "Online"; after it, Retry syncs.
    const bob = await device('bob');
    await bob.signIn();
    await bob.joinWorkspace(workspaceId);
    await bob.page.getByRole('alert').filter({ hasText: 'bob is not a member of this workspace' }).waitFor({ timeout: 30_000 });
    assert.equal(await bob.networkState(), 'not-synced');
    await bob.screenshot('1-not-a-member');
    await alice.invite('bob');
    await bob.page.getByRole('button', { name: 'Retry' }).click();
    await bob.openThread('general');
    await until(async () => (await bob.networkState()) === 'online', 'the invited member syncs');

    await alice.send('Morning! Anyone up for lunch?');
    await bob.message('Morning! Anyone up for lunch?').waitFor({ timeout: 30_000 });
    const firstBox = await alice.message('Morning! Anyone up for lunch?').boundingBox();
    const composerBox = await alice.page.getByRole('textbox', { name: 'Message', exact: true }).boundingBox();

    // Both type at once: equal indexes are ordered by order_key, the same way everywhere.
    for (let i = 1; i <= 3; i++) {
      await Promise.all([alice.send(`alice ${i}`), bob.send(`bob ${i}`)]);
    }
    const final = await converged([alice, bob], workspaceId, threadId);
    assert.equal(final.length, 7);
    // Each device's own messages keep the order they were typed in.
    const textsBy = (author: string) => final.filter((m) => m.author === author).map((m) => m.text);
    assert.deepEqual(textsBy('alice'), ['Morning! Anyone up for lunch?', 'alice 1', 'alice 2', 'alice 3']);
    assert.deepEqual(textsBy('bob'), ['bob 1', 'bob 2', 'bob 3']);

    // Arriving messages did not move what was already on screen.
    assert.deepEqual(await alice.message('Morning! Anyone up for lunch?').boundingBox(), firstBox);
    assert.deepEqual(await alice.page.getByRole('textbox', { name: 'Message', exact: true }).boundingBox(), composerBox);

    // A forced rescan replaces the local state with the server's, which is the same.
    await alice.showOverlay();
    await alice.page.getByRole('button', { name: 'Force rescan' }).click();
    await alice.page.getByText(/^Rescanned: \d+ records$/).waitFor();
    assert.deepEqual(await alice.messages(), final);
    await alice.screenshot('1-two-devices-alice');
    await bob.screenshot('1-two-devices-bob');
  });

  test('a device offline writes and deletes; back online nothing is lost or resurrected', async () => {
    const { workspaceId, threadId, owner: alice, members } = await workspaceWith('carol', 'dan');
    const dan = members[0]!;
    for (const text of ['m1', 'm2', 'm3', 'm4']) await alice.send(text);
    await converged([alice, dan], workspaceId, threadId);

    await dan.page.context().setOffline(true);
    await until(async () => (await dan.networkState()) === 'no network', 'dan’s app notices it is offline');
    await dan.showOverlay();
    await until(async () => (await dan.overlayField('connection').textContent())?.startsWith('offline'), 'the overlay says offline');

    await dan.send('dan offline 1');
    await dan.send('dan offline 2');
    await dan.edit('m2', 'm2 edited offline');
    await dan.remove('m1');
    await alice.send('carol while dan is away');
    await alice.remove('m3');
    await alice.waitAllSynced();
    assert.equal(await dan.message('dan offline 1').getAttribute('data-sync-state'), 'pending');
    await until(async () => (await dan.pendingOps()) === 4, 'dan’s outbox holds his four writes');
    assert.ok(!(await dan.texts()).includes('carol while dan is away'), 'an offline device receives nothing');
    assert.ok((await dan.texts()).includes('m3'), 'an offline device still shows what it had');
    await dan.screenshot('2-offline-dan-while-offline');

    await dan.page.context().setOffline(false);
    const final = await converged([alice, dan], workspaceId, threadId);
    assert.deepEqual(
      final.map((m) => m.text).sort(),
      ['carol while dan is away', 'dan offline 1', 'dan offline 2', 'm2 edited offline', 'm4'],
    );
    const records = await server.snapshot(workspaceId, 'carol');
    for (const text of ['m1', 'm3']) {
      const record = records.find((r) => (r.payload as { text?: string } | null)?.text === text);
      assert.equal(record?.deleted, true, `${text} is a tombstone on the server`);
    }
    await until(async () => (await dan.pendingOps()) === 0, 'dan’s outbox is empty');

    await alice.screenshot('2-offline-carol');
    await dan.screenshot('2-offline-dan');
  });

  test('concurrent edits of one message end identical, and the overlay shows the conflict', async () => {
    const { workspaceId, threadId, owner: erin, members } = await workspaceWith('erin', 'frank');
    const frank = members[0]!;
    await erin.send('The meeting is at 10');
    await converged([erin, frank], workspaceId, threadId);

    await erin.setWorkOffline(true);
    await frank.setWorkOffline(true);
    await until(async () => (await erin.networkState()) === 'offline' && (await frank.networkState()) === 'offline', 'both work offline');
    await frank.edit('The meeting is at 10', 'The meeting is at 11 (frank)');
    await erin.edit('The meeting is at 10', 'The meeting is at 9 (erin)');
    const erinStamp = await erin.stampOf('The meeting is at 9 (erin)');
    const frankStamp = await frank.stampOf('The meeting is at 11 (frank)');
    assert.equal(erinStamp.id, frankStamp.id);
    assert.equal(erinStamp.clock, frankStamp.clock, 'both edits are the second write of the message');

    // The winner by (clock, hlc) goes online first; the loser's push is then superseded.
    const erinWins = erinStamp.hlc > frankStamp.hlc;
    const [winner, loser] = erinWins ? [erin, frank] : [frank, erin];
    const [winnerStamp, loserStamp] = erinWins ? [erinStamp, frankStamp] : [frankStamp, erinStamp];
    const winningText = erinWins ? 'The meeting is at 9 (erin)' : 'The meeting is at 11 (frank)';
    await winner.setWorkOffline(false);
    await until(async () => (await winner.messages())[0]?.state === 'synced', 'the winning edit is pushed');
    await loser.showOverlay();
    await loser.setWorkOffline(false);

    const final = await converged([erin, frank], workspaceId, threadId);
    assert.deepEqual(final.map((m) => m.text), [winningText]);
    const conflicts = await until(async () => {
      const listed = await loser.conflicts();
      return listed.length > 0 ? listed : null;
    }, 'the overlay lists the conflict');
    const conflict = conflicts[0]!;
    assert.equal(conflict.table, 'messages');
    assert.equal(conflict.pk, erinStamp.id);
    assert.equal(conflict.winner, 'remote');
    assert.match(conflict.local, new RegExp(`clock ${loserStamp.clock} · ${loserStamp.hlc}`));
    assert.match(conflict.remote, new RegExp(`clock ${winnerStamp.clock} · ${winnerStamp.hlc}`));

    await winner.showOverlay();
    await erin.screenshot('3-conflict-erin');
    await frank.screenshot('3-conflict-frank');
  });

  test('a reload during pending writes keeps them, then pushes them', async () => {
    const { workspaceId, threadId, owner: gina, members } = await workspaceWith('gina', 'hank');
    const hank = members[0]!;
    await gina.send('before the reload');
    await gina.send('to be deleted');
    await converged([gina, hank], workspaceId, threadId);

    // Pushes fail at the network while the app believes it is online: over HTTP, and on the
    // realtime socket (a push frame cuts it, as a connection lost mid-push), reload included.
    const context = gina.page.context();
    await context.route('**/v1/workspaces/*/push', (route) => route.abort('connectionrefused'));
    await cutSocketPushes(gina.page, true);
    await gina.send('written before reload 1');
    await gina.send('written before reload 2');
    await gina.edit('before the reload', 'edited before reload');
    await gina.remove('to be deleted');
    await gina.showOverlay();
    await until(async () => Number(await gina.overlayField('retries').getAttribute('data-value')) > 0, 'the push is retried');

    await gina.page.reload();
    await gina.waitForChat();
    await gina.message('written before reload 2').waitFor();
    assert.deepEqual(await gina.texts(), ['edited before reload', 'written before reload 1', 'written before reload 2']);
    assert.deepEqual((await gina.messages()).map((m) => m.state), ['pending', 'pending', 'pending']);
    await until(async () => (await gina.pendingOps()) === 4, 'the outbox still holds the four writes');
    assert.ok((await hank.texts()).includes('to be deleted'), 'nothing reached the other device yet');
    await gina.screenshot('4-reload-gina-pending-after-reload');

    await context.unroute('**/v1/workspaces/*/push');
    await cutSocketPushes(gina.page, false);
    const final = await converged([gina, hank], workspaceId, threadId);
    assert.deepEqual(final.map((m) => m.text), ['edited before reload', 'written before reload 1', 'written before reload 2']);

    await gina.screenshot('4-reload-gina');
    await hank.screenshot('4-reload-hank');
  });

  test('a write the server cannot take shows as failed, and Discard drops it', async () => {
    const { workspaceId, threadId, owner: kim } = await workspaceWith('kim');
    await kim.send('a normal message');
    // Above the protocol's 1 MiB payload limit: rejected for good, kept, reported, skipped.
    const huge = `too big ${'x'.repeat(1_100_000)}`;
    const composer = kim.page.getByRole('textbox', { name: 'Message', exact: true });
    await composer.fill(huge);
    await composer.press('Enter');
    const failed = kim.page.locator('li[data-sync-state="failed"]');
    await failed.waitFor({ timeout: 30_000 });
    await kim.send('after the failure');
    await until(async () => (await kim.messages()).filter((m) => m.state === 'synced').length === 2, 'the queue goes on past the failed write');
    await kim.showOverlay();
    await until(async () => Number(await kim.overlayField('errors').getAttribute('data-value')) > 0, 'the overlay counts the error');
    await kim.screenshot('6-failed-write');

    await failed.getByRole('button', { name: 'Discard failed change' }).click();
    await failed.waitFor({ state: 'detached' });
    const final = await converged([kim], workspaceId, threadId);
    assert.deepEqual(final.map((m) => m.text), ['a normal message', 'after the failure']);
    await kim.screenshot('6-failed-write-discarded');
  });

  test('two tabs of one device: only the leader syncs, both show the same data', async () => {
    const { workspaceId, threadId, owner: tab1, members } = await workspaceWith('ivy', 'jack');
    const jack = members[0]!;
    const context = tab1.page.context();
    const traffic = await SyncTraffic.attach(context);
    const tab2 = await ChatPage.open(context, 'ivy', `/${new URL(tab1.page.url()).hash}`);
    await tab2.waitForChat();
    await tab1.showOverlay();
    await tab2.showOverlay();
    await until(async () => (await tab1.overlayField('tab').getAttribute('data-leader')) === 'true', 'the first tab leads');
    assert.equal(await tab2.overlayField('tab').getAttribute('data-leader'), 'false');

    await tab2.send('from tab 2');
    await tab1.message('from tab 2').waitFor();
    await jack.send('from jack');
    await tab1.send('from tab 1');
    await tab2.message('from tab 1').waitFor();
    const final = await converged([tab1, tab2, jack], workspaceId, threadId);
    assert.equal(final.length, 3);
    assert.equal(await traffic.of(tab2.page), 0, 'the follower tab sent no sync request');
    assert.ok((await traffic.of(tab1.page)) > 0, 'the leader tab synced');
    await tab1.screenshot('5-two-tabs-leader');
    await tab2.screenshot('5-two-tabs-follower');

    // The leader closes: the other tab takes over.
    await tab1.page.close();
    await until(async () => (await tab2.overlayField('tab').getAttribute('data-leader')) === 'true', 'the second tab leads');
    await tab2.send('after the handover');
    await jack.message('after the handover').waitFor({ timeout: 30_000 });
    await converged([tab2, jack], workspaceId, threadId);
    assert.ok((await traffic.of(tab2.page)) > 0, 'the new leader syncs');
    await tab2.screenshot('5-two-tabs-after-handover');
  });
});
