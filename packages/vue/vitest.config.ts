import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // The engine from its sources, as the demo bundles it: no client build needed to test.
    alias: {
      '@or3/sync-client': fileURLToPath(new URL('../client/src/index.ts', import.meta.url)),
      '@or3/sync-protocol': fileURLToPath(new URL('../protocol/src/index.ts', import.meta.url)),
    },
    dedupe: ['dexie', 'vue'],
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'happy-dom',
    testTimeout: 30_000,
    maxWorkers: 2,
  },
});
