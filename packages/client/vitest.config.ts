import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration files each start their own server; keep the 2-core machines calm.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
