/**
 * @or3/sync-client: the browser half of or3-sync. Open a workspace with
 * `openWorkspace()`, talk to the gateway with `GatewayProvider`, or bring any
 * other `SyncProvider` (the Convex package has one).
 */
export * from './wire.js';
export * from './provider.js';
export { openWorkspace, workspaceDatabaseName, SyncEngine, type OpenWorkspaceOptions, type SyncRunResult } from './engine.js';
export { GatewayProvider, type GatewayProviderOptions, type GetToken } from './gateway-provider.js';
export {
  SUBSCRIBE_SUBPROTOCOL,
  type RealtimeState,
  type RealtimeTransport,
  type WebSocketConstructor,
  type WebSocketLike,
} from './gateway-subscription.js';
export * from './events.js';
export { compareStamps, winsOver, type Stamp } from './lww.js';
export {
  formatHlc,
  parseHlc,
  compareHlc,
  hlcSend,
  hlcReceive,
  isDeviceId,
  InvalidHlcError,
  HLC_MAX_COUNTER,
  HLC_MAX_DRIFT_MS,
  type HlcState,
  type ParsedHlc,
} from './hlc.js';
export {
  ENGINE_TABLES,
  type DeleteMode,
  type SyncedTableOptions,
  type PendingOpRow,
  type TombstoneRow,
  type SyncRunRow,
} from './schema.js';
export { CaptureError } from './capture.js';
export type { BackoffOptions } from './backoff.js';
export type { LockManagerLike } from './leader.js';
