import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    alias: {
      // The client and protocol packages are consumed from source inside the
      // monorepo, so their tests and ours never depend on a stale build.
      '@or3/sync-client': new URL('../client/src/index.ts', import.meta.url).pathname,
      '@or3/sync-protocol': new URL('../protocol/src/index.ts', import.meta.url).pathname,
    },
  },
  test: {
    environment: 'edge-runtime',
    include: ['test/**/*.test.ts'],
    server: { deps: { inline: ['convex-test'] } },
    testTimeout: 30_000,
  },
});
