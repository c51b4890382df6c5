/**
 * Counts the sync traffic (push, pull, snapshot, record, subscribe requests,
 * and frames sent on the sync WebSocket, where pushes go when it is open)
 * each tab of a browser context sends, to tell which tab syncs.
 */
import type { BrowserContext, Page } from 'playwright-core';

const SYNC_PATH = /\/v1\/workspaces\/[^/]+\/(push|changes|snapshot|records|subscribe|events)\b/;

/** In the page: counts frames sent on sync sockets (the page's existing sockets too: `send` is the prototype's). */
function countSyncFrames(): void {
  const counter = window as unknown as { __or3SyncFrames?: number };
  if (counter.__or3SyncFrames !== undefined) return;
  counter.__or3SyncFrames = 0;
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (this: WebSocket, data: string | ArrayBufferLike | Blob | ArrayBufferView) {
    if (/\/v1\/workspaces\/[^/]+\/subscribe\b/.test(this.url)) counter.__or3SyncFrames! += 1;
    return send.call(this, data);
  };
}

export class SyncTraffic {
  private readonly counts = new Map<Page, number>();

  private constructor(context: BrowserContext) {
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

  /** A counter of `context`'s tabs, open ones and those opened later. */
  static async attach(context: BrowserContext): Promise<SyncTraffic> {
    const traffic = new SyncTraffic(context);
    await context.addInitScript(countSyncFrames);
    for (const page of context.pages()) await page.evaluate(countSyncFrames);
    return traffic;
  }

  /** Sync requests and sockets `page` opened, and frames it sent on them, since this counter was attached. */
  async of(page: Page): Promise<number> {
    const frames = await page.evaluate(() => (window as unknown as { __or3SyncFrames?: number }).__or3SyncFrames ?? 0);
    return (this.counts.get(page) ?? 0) + frames;
  }

  private bump(page: Page): void {
    this.counts.set(page, (this.counts.get(page) ?? 0) + 1);
  }
}

const CUT_FLAG = 'or3-test:cut-socket-pushes';

/** In the page: while the flag is set, a push frame on a sync socket is not sent and the socket closes. */
function cutPushFrames(flag: string): void {
  const marked = window as unknown as { __or3CutPushes?: boolean };
  if (marked.__or3CutPushes) return;
  marked.__or3CutPushes = true;
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (this: WebSocket, data: string | ArrayBufferLike | Blob | ArrayBufferView) {
    if (localStorage.getItem(flag) === '1' && typeof data === 'string' && data.startsWith('{"type":"push"')) {
      this.close();
      return;
    }
    return send.call(this, data);
  };
}

/**
 * Cuts (or stops cutting) the sync socket of `page`'s context at every push frame, so pushes on
 * it fail at the network as blocked HTTP pushes do; it holds across reloads (the flag is in
 * localStorage).
 */
export async function cutSocketPushes(page: Page, cut: boolean): Promise<void> {
  const context = page.context();
  const marked = context as unknown as { __or3CutPushes?: boolean };
  if (!marked.__or3CutPushes) {
    marked.__or3CutPushes = true;
    await context.addInitScript(cutPushFrames, CUT_FLAG);
  }
  await page.evaluate(cutPushFrames, CUT_FLAG);
  await page.evaluate(([flag, on]) => (on ? localStorage.setItem(flag, '1') : localStorage.removeItem(flag)), [CUT_FLAG, cut] as const);
}
