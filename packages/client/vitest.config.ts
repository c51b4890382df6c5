import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // The protocol package from its sources, so no build is needed to test.
    alias: { '@or3/sync-protocol': fileURLToPath(new URL('../protocol/src/index.ts', import.meta.url)) },
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration files each start their own server; keep the 2-core machines calm.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
