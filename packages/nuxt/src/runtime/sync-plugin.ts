/**
 * The module's client-only plugin: one `GatewayProvider` on the configured
 * gateway (shared by every workspace), and the `@or3/sync-vue` plugin whose
 * engines open the configured schema for the token's user. `$or3Sync` is the
 * `ActiveWorkspace` (`switchTo`, `signOut`).
 */
import { defineNuxtPlugin, useRuntimeConfig } from 'nuxt/app';
import { GatewayProvider, openWorkspace } from '@or3/sync-client';
import { createSyncPlugin } from '@or3/sync-vue';
import type { SyncModuleOptions } from '../sync-config.js';
import { syncToken } from './sync-token.js';

export default defineNuxtPlugin({
  name: 'or3-sync',
  setup(nuxtApp) {
    const config = useRuntimeConfig().public.or3Sync as SyncModuleOptions;
    const provider = new GatewayProvider({ baseUrl: config.baseUrl || window.location.origin, getToken: syncToken });
    const plugin = createSyncPlugin({
      open: async (workspaceId) =>
        openWorkspace({
          workspaceId,
          // The signed-in user is the token's: the database holds only their data (see the client README).
          // No token now (offline, or no getter yet): the workspace still opens, and its writes are the owner's.
          userId: (await provider.tokenUserId().catch(() => null)) ?? undefined,
          provider,
          schema: config.schema,
          schemaVersion: config.schemaVersion,
          syncedTables: config.syncedTables,
        }),
    });
    nuxtApp.vueApp.use(plugin);
    return { provide: { or3Sync: plugin.workspace } };
  },
});
