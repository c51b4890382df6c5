/** One real gateway per test file, and the engines each test opened closed after it. */
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { SyncEngine } from '../../src/engine.js';
import { startServer, type TestServer } from './server.js';

/**
 * The hooks every test file against the real binary needs: one gateway for the file, and the
 * engines a test opened (push them to `opened`) closed after it. `server()` is the file's
 * gateway once its `beforeAll` ran.
 */
export function gatewayPerFile(): { server: () => TestServer; opened: SyncEngine[] } {
  let server: TestServer | undefined;
  const opened: SyncEngine[] = [];
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    for (const engine of opened.splice(0)) await engine.close();
  });
  return {
    server: () => {
      if (!server) throw new Error('the gateway starts in beforeAll');
      return server;
    },
    opened,
  };
}
