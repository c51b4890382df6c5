/**
 * The demo as a user drives it: by labels and roles (so the tests also check
 * that every control is labelled), one `ChatPage` per browser tab.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { demoDir } from './server.js';
import { until } from './until.js';

export const artifactsDir = join(demoDir, 'test-artifacts');

/** A message as the page shows it. */
export interface ShownMessage {
  id: string;
  author: string;
  text: string;
  state: string;
}

export class ChatPage {
  private constructor(
    readonly page: Page,
    readonly user: string,
  ) {}

  /** Opens the app in a new tab of `context` (at `path`, `/` by default). */
  static async open(context: BrowserContext, user: string, path = '/'): Promise<ChatPage> {
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error(`[${user}] page error:`, error));
    page.on('console', (message) => {
      if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) {
        console.error(`[${user}] console: ${message.text()}`);
      }
    });
    await page.goto(path);
    return new ChatPage(page, user);
  }

  /** Signs in as `user` on the sign-in screen. */
  async signIn(): Promise<void> {
    await this.page.getByLabel('Your name').fill(this.user);
    await this.page.getByRole('button', { name: 'Continue' }).click();
    await this.page.getByRole('heading', { name: 'Workspaces' }).waitFor();
  }

  /** Signs out from the workspace picker (going there first from a chat); resolves on the sign-in screen, or at the dialog when writes are unsynced. */
  async signOut(): Promise<void> {
    const toPicker = this.page.getByRole('button', { name: 'Switch workspace' });
    if (await toPicker.isVisible()) await toPicker.click();
    await this.page.getByRole('button', { name: 'Sign out' }).click();
    await this.page.getByLabel('Your name').or(this.page.getByRole('alertdialog', { name: 'Sign out?' })).waitFor();
  }

  /** The sign-out dialog's count of unsynced writes, then the answer `choice`. */
  async answerSignOut(choice: 'Keep them for my next sign-in' | 'Discard them' | 'Cancel'): Promise<number> {
    const count = Number(await this.page.getByTestId('unsynced-count').getAttribute('data-count'));
    await this.page.getByRole('alertdialog', { name: 'Sign out?' }).getByRole('button', { name: choice }).click();
    if (choice !== 'Cancel') await this.page.getByLabel('Your name').waitFor();
    return count;
  }

  /** Opens one of the user's workspaces from the picker, by name. */
  async openWorkspaceNamed(name: string): Promise<void> {
    await this.page.getByRole('list', { name: 'Your workspaces' }).getByRole('button', { name, exact: true }).click({ timeout: 30_000 });
    await this.waitForChat();
  }

  /**
   * Every IndexedDB database of this browser context with the records holding `text`
   * anywhere (any store, any field): what the next user of the browser could read.
   */
  storedRecordsWith(text: string): Promise<{ database: string; store: string }[]> {
    return this.page.evaluate(async (needle) => {
      const found: { database: string; store: string }[] = [];
      for (const { name } of await indexedDB.databases()) {
        if (!name) continue;
        const db = await new Promise<IDBDatabase>((resolve, reject) => {
          const request = indexedDB.open(name);
          request.onsuccess = () => resolve(request.result);
          request.onerror = () => reject(request.error);
        });
        for (const store of Array.from(db.objectStoreNames)) {
          const rows = await new Promise<unknown[]>((resolve, reject) => {
            const request = db.transaction(store).objectStore(store).getAll();
            request.onsuccess = () => resolve(request.result as unknown[]);
            request.onerror = () => reject(request.error);
          });
          for (const row of rows) if (JSON.stringify(row).includes(needle)) found.push({ database: name, store });
        }
        db.close();
      }
      return found;
    }, text);
  }

  /** Names of the IndexedDB databases of this browser context. */
  databases(): Promise<string[]> {
    return this.page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name ?? '').sort());
  }

  /** Creates a workspace from the picker; returns its id. */
  async createWorkspace(name: string): Promise<string> {
    await this.page.getByLabel('New workspace name').fill(name);
    await this.page.getByRole('button', { name: 'Create workspace' }).click();
    await this.waitForChat();
    // A new workspace opens on its first thread; wait for it, so a thread the test adds next is the one shown.
    await this.page.getByRole('heading', { name: 'General', exact: true }).waitFor();
    return this.workspaceId();
  }

  /** Joins a workspace by id from the picker. */
  async joinWorkspace(workspaceId: string): Promise<void> {
    await this.page.getByLabel('Workspace id').fill(workspaceId);
    await this.page.getByRole('button', { name: 'Join workspace' }).click();
    await this.waitForChat();
  }

  /** The owner's invite field: makes `user` an editor. */
  async invite(user: string): Promise<void> {
    await this.page.getByLabel('Invite user').fill(user);
    await this.page.getByRole('button', { name: 'Invite', exact: true }).click();
    await this.page.getByText(`${user} can now join.`).waitFor();
  }

  async waitForChat(): Promise<void> {
    await this.page.getByRole('switch', { name: 'Work offline' }).waitFor();
  }

  /** The workspace open in this tab. */
  async workspaceId(): Promise<string> {
    return (await this.page.getByTestId('workspace-id').textContent()) ?? '';
  }

  /** The thread open in this tab (from the URL). */
  threadId(): string | null {
    return /\/t\/([^/]+)$/.exec(new URL(this.page.url()).hash)?.[1] ?? null;
  }

  async createThread(title: string): Promise<void> {
    await this.page.getByLabel('New thread').fill(title);
    await this.page.getByRole('button', { name: 'Add', exact: true }).click();
    await this.page.getByRole('heading', { name: title, exact: true }).waitFor();
  }

  /** Opens the thread `title`, waiting for it to sync here first. */
  async openThread(title: string): Promise<void> {
    await this.page.getByRole('navigation', { name: 'Threads' }).getByRole('button', { name: title, exact: true }).click({ timeout: 30_000 });
    await this.page.getByRole('heading', { name: title, exact: true }).waitFor();
  }

  /** Types `text` into the composer and sends it with Enter. */
  async send(text: string): Promise<void> {
    const composer = this.page.getByRole('textbox', { name: 'Message', exact: true });
    await composer.fill(text);
    await composer.press('Enter');
    await this.message(text).waitFor();
  }

  /** The list item of the message showing `text`. */
  message(text: string) {
    return this.page.locator('li[data-message-id]').filter({ has: this.page.locator('.message-text', { hasText: new RegExp(`^${escapeRegExp(text)}$`) }) });
  }

  async edit(text: string, newText: string): Promise<void> {
    await this.message(text).getByRole('button', { name: 'Edit message' }).click();
    const field = this.page.getByRole('textbox', { name: 'Edit message' });
    await field.fill(newText);
    await field.press('Enter');
    await this.message(newText).waitFor();
  }

  async remove(text: string): Promise<void> {
    await this.message(text).getByRole('button', { name: 'Delete message' }).click();
    await this.message(text).waitFor({ state: 'detached' });
  }

  /** The messages shown, in display order. */
  messages(): Promise<ShownMessage[]> {
    return this.page.locator('li[data-message-id]').evaluateAll((items) =>
      items.map((li) => ({
        id: li.getAttribute('data-message-id') ?? '',
        author: li.querySelector('.author')?.textContent ?? '',
        text: li.querySelector('.message-text')?.textContent ?? '',
        state: li.getAttribute('data-sync-state') ?? '',
      })),
    );
  }

  /** The LWW stamp of the message showing `text`, as the page renders it. */
  async stampOf(text: string): Promise<{ id: string; clock: number; hlc: string }> {
    const item = this.message(text);
    return {
      id: (await item.getAttribute('data-message-id')) ?? '',
      clock: Number(await item.getAttribute('data-clock')),
      hlc: (await item.getAttribute('data-hlc')) ?? '',
    };
  }

  /** Texts of the messages shown, in order. */
  async texts(): Promise<string[]> {
    return (await this.messages()).map((m) => m.text);
  }

  /** Waits until every shown message is synced. */
  async waitAllSynced(timeoutMs = 30_000): Promise<void> {
    await until(async () => (await this.messages()).every((m) => m.state === 'synced'), `${this.user}: every message synced`, timeoutMs);
  }

  /** Flips the app's "Work offline" switch. */
  async setWorkOffline(offline: boolean): Promise<void> {
    await this.page.getByRole('switch', { name: 'Work offline' }).setChecked(offline);
  }

  /**
   * The header's chip: `online` (synced), `syncing`, `connecting`, `retrying`, `unreachable`, `attention`
   * (failed writes), `held`, `not-synced` (refused), `read-only` (a viewer now), `offline` (work offline) or `no network`.
   */
  async networkState(): Promise<string | null> {
    return this.page.getByTestId('network-state').getAttribute('data-state');
  }

  /** Shows the dev overlay (idempotent). */
  async showOverlay(): Promise<void> {
    const toggle = this.page.getByRole('button', { name: 'Sync overlay' });
    if ((await toggle.getAttribute('aria-pressed')) !== 'true') await toggle.click();
    await this.page.getByRole('region', { name: 'Sync overlay' }).waitFor();
  }

  /** A value of the overlay, by its `data-field`. */
  overlayField(field: string) {
    return this.page.locator(`.or3-overlay [data-field="${field}"]`);
  }

  /** The conflicts the overlay lists, newest first. */
  conflicts(): Promise<{ table: string; pk: string; winner: string; local: string; remote: string }[]> {
    return this.page.locator('.or3-overlay [data-list="conflicts"] > li').evaluateAll((items) =>
      items.map((li) => ({
        table: li.getAttribute('data-table') ?? '',
        pk: li.getAttribute('data-pk') ?? '',
        winner: li.getAttribute('data-winner') ?? '',
        local: li.querySelector('[data-side="local"]')?.textContent ?? '',
        remote: li.querySelector('[data-side="remote"]')?.textContent ?? '',
      })),
    );
  }

  async pendingOps(): Promise<number> {
    return Number(await this.overlayField('pending').getAttribute('data-value'));
  }

  /** Saves a screenshot under `test-artifacts/`. */
  async screenshot(name: string): Promise<string> {
    mkdirSync(artifactsDir, { recursive: true });
    const path = join(artifactsDir, `${name}.png`);
    await this.page.screenshot({ path });
    return path;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
