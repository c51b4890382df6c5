/**
 * Drives the small notes page that the Nuxt module's fixture and the
 * packed-install app both render: a `state` line (useSyncStatus), a "Note"
 * field with an Add button, and the notes as `li.note`.
 */
import type { Browser, Page } from 'playwright-core';
import { newDevice } from './browser.js';
import { until } from './until.js';

/** Opens the page on `count` new devices as `user` in `workspaceId`, and waits until each says synced. */
export async function openNotesDevices(browser: Browser, baseUrl: string, user: string, workspaceId: string, count = 2): Promise<Page[]> {
  const pages: Page[] = [];
  for (let device = 0; device < count; device++) {
    const page = await (await newDevice(browser, baseUrl)).newPage();
    page.on('pageerror', (error) => console.error(`[device ${device}] page error:`, error));
    await page.goto(`/?user=${encodeURIComponent(user)}&ws=${encodeURIComponent(workspaceId)}`);
    pages.push(page);
  }
  for (const page of pages) {
    await until(async () => (await page.getByTestId('state').textContent()) === 'synced', 'the app says synced');
  }
  return pages;
}

/** Adds a note on `from` and waits until `to` shows it. */
export async function addNoteAndSee(from: Page, to: Page, text: string): Promise<void> {
  await from.getByLabel('Note').fill(text);
  await from.getByRole('button', { name: 'Add' }).click();
  await to.locator('li.note', { hasText: text }).waitFor({ timeout: 30_000 });
}
