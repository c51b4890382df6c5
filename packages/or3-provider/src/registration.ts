/**
 * Registers the provider into OR3's server registries. Synchronous: OR3's
 * startup check (`99.validate-providers`) runs right after the plugins, so
 * nothing here may wait. The registries are passed in, so a host (OR3's
 * `~~/server/...` modules) or a test fixture provides them.
 */
import type { H3Event } from 'h3';
import { createOr3SyncAdapter, OR3SYNC_PROVIDER_ID } from './adapter.js';
import type { GatewayClient } from './gateway-client.js';
import type { Or3ServerRegistries } from './or3-types.js';
import { createOr3SyncWorkspaceStore } from './workspace-store.js';

export interface RegisterOr3SyncOptions {
  /** The gateway client, made at first use (so a missing setting fails the first request with its name, not startup). */
  client(): GatewayClient;
  /** The session user's id for a request (OR3: `resolveSessionContext(event).user.id`). */
  userOf(event: H3Event): Promise<string>;
}

/** Registers the `SyncGatewayAdapter` and the `AuthWorkspaceStore` under `or3sync`. */
export function registerOr3Sync(registries: Or3ServerRegistries<H3Event>, options: RegisterOr3SyncOptions): void {
  const clientOf = options.client;
  registries.registerSyncGatewayAdapter({
    id: OR3SYNC_PROVIDER_ID,
    order: 100,
    create: () => createOr3SyncAdapter({ client: clientOf(), userOf: options.userOf }),
  });
  registries.registerAuthWorkspaceStore({
    id: OR3SYNC_PROVIDER_ID,
    order: 100,
    create: (event) => createOr3SyncWorkspaceStore(clientOf(), event),
  });
}
