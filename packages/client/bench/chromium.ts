/**
 * Runs a benchmark page in Debian's Chromium (driven by playwright-core;
 * `CHROMIUM` names the binary, `/usr/bin/chromium` by default): bundles
 * `entry` with esbuild, serves it from a routed https origin (IndexedDB needs
 * a real origin, `crypto.randomUUID` a secure one), or from wherever `serve`
 * puts the page's HTML and answers with its URL, and hands the page to `run`.
 */
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';

export async function inChromium<T>(
  entry: URL,
  run: (page: Page) => Promise<T>,
  serve?: (html: string) => Promise<string>,
): Promise<{ result: T; version: string }> {
  const html = await bundlePage(entry);
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    if (serve) {
      await page.goto(await serve(html));
    } else {
      await page.route('https://bench.or3-sync.test/**', (route) => route.fulfill({ status: 200, contentType: 'text/html', body: html }));
      await page.goto('https://bench.or3-sync.test/');
    }
    return { result: await run(page), version: browser.version() };
  } finally {
    await browser.close();
  }
}

/** An HTML page that runs `entry`, bundled for the browser. */
export async function bundlePage(entry: URL): Promise<string> {
  const bundle = await build({
    entryPoints: [fileURLToPath(entry)],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
  });
  const script = bundle.outputFiles[0]!.text;
  return `<!doctype html><script>${script.replace(/<\/script/g, '<\\/script')}</script>`;
}

/** Debian's Chromium, headless, with the flags that keep it off the network. */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** The median of `values`. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
