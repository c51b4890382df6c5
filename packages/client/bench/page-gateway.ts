/**
 * The real gateway for a benchmark page in Chromium: the release binary when
 * there is one (else debug; `OR3_SYNC_BIN` to choose), no rate limits, and the
 * page served by the gateway itself (`--static-dir`), so its requests are
 * same-origin. `serve` is `inChromium`'s third argument.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, type TestServer } from '../test/support/server.js';

export interface PageGateway {
  server: TestServer;
  /** The binary, relative to the repository. */
  binary: string;
  serve(html: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startPageGateway(): Promise<PageGateway> {
  const repo = fileURLToPath(new URL('../../..', import.meta.url));
  const release = join(repo, 'target/release/or3-sync');
  if (!process.env.OR3_SYNC_BIN && existsSync(release)) process.env.OR3_SYNC_BIN = release;
  const staticDir = mkdtempSync(join(tmpdir(), 'or3-bench-page-'));
  writeFileSync(join(staticDir, 'index.html'), '');
  const unlimited = ['push', 'pull', 'subscribe', 'anonymous'].flatMap((k) => [`--rate-${k}-per-minute`, '1000000000']);
  const server = await startServer(['--static-dir', staticDir, ...unlimited]);
  return {
    server,
    binary: relative(repo, process.env.OR3_SYNC_BIN ?? join(repo, 'target/debug/or3-sync')),
    async serve(html) {
      writeFileSync(join(staticDir, 'index.html'), html);
      return `${server.baseUrl}/`;
    },
    async stop() {
      await server.stop();
      rmSync(staticDir, { recursive: true, force: true });
    },
  };
}
