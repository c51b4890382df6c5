/**
 * Builds the demo into `dist/`, which `or3-sync serve --static-dir` serves at `/`.
 * `@or3/sync-client` is bundled from its sources, so the demo never needs the
 * client package built first (and always runs the engine as checked out).
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  resolve: {
    alias: { '@or3/sync-client': fileURLToPath(new URL('../client/src/index.ts', import.meta.url)) },
    // One Dexie: liveQuery and the engine must share its transaction zones.
    dedupe: ['dexie'],
  },
  build: { target: 'es2022', sourcemap: true },
});
