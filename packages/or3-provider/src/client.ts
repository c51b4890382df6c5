/** `or3-provider-or3sync/client`: the browser `SyncProvider` for OR3, woken by the gateway's WebSocket. */
export { createOr3SyncRealtimeProvider, type Or3SyncRealtimeProviderOptions } from './client/realtime-provider.js';
export { Or3RouteError } from './client/or3-routes.js';
export type { WebSocketFactory, WebSocketLike } from './client/wake-socket.js';
