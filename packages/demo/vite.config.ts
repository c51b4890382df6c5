/**
 * Builds the demo into `dist/`, which `or3-sync serve --static-dir` serves at `/`.
 * `@or3/sync-protocol`, `@or3/sync-client` and `@or3/sync-vue` are bundled from
 * their sources, so the demo never needs the packages built first (and always
 * runs them as checked out).
 */
import { fileURLToPath } from 'node:url';
import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vite';

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  plugins: [vue()],
  resolve: {
    alias: {
      '@or3/sync-client': source('../client/src/index.ts'),
      '@or3/sync-protocol': source('../protocol/src/index.ts'),
      '@or3/sync-vue': source('../vue/src/index.ts'),
    },
    // One Dexie and one Vue: liveQuery and the engine share transaction zones, the bindings share reactivity.
    dedupe: ['dexie', 'vue'],
  },
  build: { target: 'es2022', sourcemap: true },
});
