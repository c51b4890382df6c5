/**
 * `or3-provider-or3sync`: OR3 Chat's sync backend on the or3-sync gateway.
 * The Nuxt module is `or3-provider-or3sync/nuxt`, the browser provider
 * `or3-provider-or3sync/client`; this entry is the server side.
 */
export { createOr3SyncAdapter, OR3SYNC_PROVIDER_ID, MAX_OR3_PAGE, MAX_GATEWAY_PUSH, type Or3SyncAdapterOptions } from './adapter.js';
export { createOr3SyncWorkspaceStore, userIdOf, ACTIVE_WORKSPACE_COOKIE, DEFAULT_WORKSPACE_NAME } from './workspace-store.js';
export { registerOr3Sync, type RegisterOr3SyncOptions } from './registration.js';
export { createRealtimeTokenHandler, REALTIME_TOKEN_ROUTE, type RealtimeToken } from './realtime-token.js';
export { GatewayClient, GatewayError } from './gateway-client.js';
export { resolveConfig, Or3SyncConfigError, type Or3SyncConfig } from './config.js';
export { toGatewayHlc, toOr3Hlc, toGatewayDevice, toOr3Device, StampMappingError } from './hlc-mapping.js';
export { rejectionCode, requestFailure } from './error-mapping.js';
export type * from './or3-types.js';
