/**
 * Counts the sync requests (push, pull, snapshot, record, subscribe) each tab
 * of a browser context sends, to tell which tab syncs.
 */
import type { BrowserContext, Page } from 'playwright-core';

const SYNC_PATH = /\/v1\/workspaces\/[^/]+\/(push|changes|snapshot|records|subscribe|events)\b/;

export class SyncTraffic {
  private readonly counts = new Map<Page, number>();

  constructor(context: BrowserContext) {
    context.on('request', (request) => {
      const page = request.frame().page();
      if (SYNC_PATH.test(request.url())) this.bump(page);
    });
    const watchSockets = (page: Page) =>
      page.on('websocket', (socket) => {
        if (SYNC_PATH.test(socket.url())) this.bump(page);
      });
    context.pages().forEach(watchSockets);
    context.on('page', watchSockets);
  }

  /** Sync requests and sockets `page` opened since this counter was attached. */
  of(page: Page): number {
    return this.counts.get(page) ?? 0;
  }

  private bump(page: Page): void {
    this.counts.set(page, this.of(page) + 1);
  }
}
