/**
 * `or3-provider-or3sync/nuxt`: the Nuxt module OR3 Chat loads for
 * `OR3_SYNC_PROVIDER=or3sync`. It adds the server plugin that registers the
 * `SyncGatewayAdapter` and `AuthWorkspaceStore`, the realtime-token route,
 * and the client plugin that registers the WebSocket-woken `SyncProvider`.
 */
import { addPlugin, addServerHandler, addServerPlugin, createResolver, defineNuxtModule } from '@nuxt/kit';
import type { Nuxt } from 'nuxt/schema';
import { REALTIME_TOKEN_ROUTE } from './realtime-token.js';

export interface Or3SyncModuleOptions {
  /** Register the browser provider woken by the gateway's WebSocket (default true); false keeps OR3's 2 s polling. */
  realtime?: boolean;
}

export default defineNuxtModule<Or3SyncModuleOptions>({
  meta: { name: 'or3-provider-or3sync', configKey: 'or3sync', compatibility: { nuxt: '>=3.13.0' } },
  defaults: { realtime: true },
  setup(options: Or3SyncModuleOptions, nuxt: Nuxt) {
    const { resolve } = createResolver(import.meta.url);
    // Declared server-only keys, so `NUXT_OR3SYNC_URL` and friends override them as well as `OR3SYNC_*`.
    const runtime = nuxt.options.runtimeConfig as Record<string, unknown>;
    runtime.or3sync = { url: '', signingKey: '', issuer: '', keyId: '', publicUrl: '', ...(runtime.or3sync as object | undefined) };
    // The runtime imports OR3's own modules through `~~`, so it is bundled with the app, never left external.
    nuxt.options.build.transpile.push(resolve('./runtime'));
    addServerPlugin(resolve('./runtime/server/plugins/register'));
    addServerHandler({ route: REALTIME_TOKEN_ROUTE, method: 'get', handler: resolve('./runtime/server/api/realtime-token') });
    if (options.realtime !== false) addPlugin({ src: resolve('./runtime/client/register-provider'), mode: 'client' });
  },
});
