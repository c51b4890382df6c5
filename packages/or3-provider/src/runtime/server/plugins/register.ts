/**
 * Nitro plugin: registers the or3-sync `SyncGatewayAdapter` and
 * `AuthWorkspaceStore` under `or3sync` in OR3's registries, synchronously.
 */
import { defineNitroPlugin } from 'nitropack/runtime';
import { registerAuthWorkspaceStore } from '~~/server/auth/store/registry';
import { registerSyncGatewayAdapter } from '~~/server/sync/gateway/registry';
import { registerOr3Sync } from '../../../registration.js';
import { gatewayClient, sessionUserId } from '../host.js';

export default defineNitroPlugin(() => {
  registerOr3Sync({ registerSyncGatewayAdapter, registerAuthWorkspaceStore }, { client: gatewayClient, userOf: sessionUserId });
});
