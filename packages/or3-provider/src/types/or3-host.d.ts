/**
 * The OR3 Chat modules the Nitro plugin imports through the host's `~~`
 * alias, declared with the shapes this package uses (they resolve only
 * inside an OR3 app).
 */
declare module '~~/server/auth/session' {
  import type { H3Event } from 'h3';
  export function resolveSessionContext(event: H3Event): Promise<{ authenticated: boolean; user?: { id: string } }>;
}

declare module '~~/server/auth/store/registry' {
  import type { H3Event } from 'h3';
  import type { AuthWorkspaceStore } from '../or3-types.js';
  export function registerAuthWorkspaceStore(item: { id: string; order?: number; create: (event?: H3Event) => AuthWorkspaceStore }): void;
}

declare module '~~/server/sync/gateway/registry' {
  import type { H3Event } from 'h3';
  import type { SyncGatewayAdapter } from '../or3-types.js';
  export function registerSyncGatewayAdapter(item: { id: string; order?: number; create: () => SyncGatewayAdapter<H3Event> }): void;
}

declare module '~~/app/core/sync/sync-provider-registry' {
  import type { SyncProvider } from '../or3-types.js';
  export function registerSyncProvider(provider: SyncProvider): void;
}
