/**
 * @or3/sync-client: the browser half of or3-sync. Attach it to the app's own
 * Dexie with `attachSync()` (or let `openWorkspace()` build one), talk to the gateway with `GatewayProvider`, or bring any
 * other `SyncProvider` (the Convex package has one).
 */
export * from './wire.js';
export * from './provider.js';
export { attachSync, openWorkspace, type OpenWorkspaceOptions } from './attach.js';
export { workspaceDatabaseName, SyncEngine, type AttachSyncOptions, type SyncRunResult } from './engine.js';
export { TableDeclarationError, type TableConventionOptions } from './table-conventions.js';
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
  ENGINE_TABLE_PREFIX,
  OUTBOX_TABLE,
  STATE_TABLE,
  TOMBSTONES_TABLE,
  RUNS_TABLE,
  STAGING_TABLE,
  type DeleteMode,
  type SyncedTableOptions,
  type PendingOpRow,
  type TombstoneRow,
  type SyncRunRow,
} from './schema.js';
export { CaptureError } from './capture.js';
export type { BackoffOptions } from './backoff.js';
export type { LockManagerLike } from './leader.js';
