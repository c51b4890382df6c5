/**
 * Client plugin: registers the or3-sync `SyncProvider` in OR3's browser
 * registry under OR3's configured sync provider id (`or3sync`), before OR3's
 * sync engine plugin picks the provider equal to that id.
 */
import { defineNuxtPlugin, useRuntimeConfig } from 'nuxt/app';
import { registerSyncProvider } from '~~/app/core/sync/sync-provider-registry';
import { createOr3SyncRealtimeProvider } from '../../client/realtime-provider.js';

export default defineNuxtPlugin({
  name: 'or3-provider-or3sync',
  enforce: 'pre',
  setup() {
    const publicConfig = useRuntimeConfig().public as { sync?: { provider?: string } };
    const id = publicConfig.sync?.provider ?? 'or3sync';
    if (id !== 'or3sync') return;
    registerSyncProvider(createOr3SyncRealtimeProvider({ id }));
  },
});
