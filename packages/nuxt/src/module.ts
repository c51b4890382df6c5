/**
 * `@or3/sync-nuxt`: a Nuxt 3 module. It puts its options in
 * `runtimeConfig.public.or3Sync`, registers a client-only plugin that
 * installs the `@or3/sync-vue` plugin over a `GatewayProvider`, and
 * auto-imports the composables plus `defineSyncTokenGetter`, through which
 * the app hands over its token getter (Clerk's `getToken`).
 */
import { addImports, addPlugin, createResolver, defineNuxtModule } from '@nuxt/kit';
import type { Nuxt } from 'nuxt/schema';
import type { SyncModuleOptions } from './sync-config.js';

export type { SyncModuleOptions } from './sync-config.js';

/** Composables auto-imported from `@or3/sync-vue`. */
const VUE_COMPOSABLES = ['useActiveWorkspace', 'useLiveQuery', 'useSyncStatus', 'useFailedOps'];

export default defineNuxtModule<SyncModuleOptions>({
  meta: { name: '@or3/sync-nuxt', configKey: 'or3Sync', compatibility: { nuxt: '>=3.13.0' } },
  defaults: { baseUrl: '', schema: {} },
  setup(options: SyncModuleOptions, nuxt: Nuxt) {
    const resolver = createResolver(import.meta.url);
    const publicConfig = nuxt.options.runtimeConfig.public as Record<string, unknown>;
    // Values already in runtimeConfig (the app's own) win over the module's options.
    publicConfig.or3Sync = { ...options, ...(publicConfig.or3Sync as Partial<SyncModuleOptions> | undefined) };
    addPlugin({ src: resolver.resolve('./runtime/sync-plugin'), mode: 'client' });
    addImports([
      ...VUE_COMPOSABLES.map((name) => ({ name, from: '@or3/sync-vue' })),
      { name: 'defineSyncTokenGetter', from: resolver.resolve('./runtime/sync-token') },
    ]);
  },
});
