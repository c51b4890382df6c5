import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    alias: {
      // The engine is tested as checked out, never as a stale build.
      '@or3/sync-client': new URL('../client/src/index.ts', import.meta.url).pathname,
      '@or3/sync-protocol': new URL('../protocol/src/index.ts', import.meta.url).pathname,
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // Each file runs servers and several engines; one file at a time keeps 2 cores honest.
    fileParallelism: false,
  },
});
