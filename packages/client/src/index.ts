/**
 * @or3/sync-client: the browser half of or3-sync. Attach it to the app's own
 * Dexie with `attachSync()` (or let `openWorkspace()` build one), talk to the gateway with `GatewayProvider`, or bring any
 * other `SyncProvider` (the Convex package has one).
 */
// The wire types, HLC and stamp order live in @or3/sync-protocol; re-exported as before.
export {
  PROTOCOL_VERSION,
  PROTOCOL_LIMITS,
  type RecordPayload,
  type Operation,
  type PushOp,
  type PushRequest,
  type OpStatus,
  type RejectionCode,
  type Winner,
  type OpRejection,
  type AppliedResult,
  type DuplicateResult,
  type SupersededResult,
  type RejectedResult,
  type OpResult,
  type PushResponse,
  type Change,
  type ChangesPage,
  type SnapshotItem,
  type SnapshotPage,
  type SyncErrorCode,
  type WireErrorBody,
  type WorkspaceRole,
} from '@or3/sync-protocol';
export * from './provider.js';
export { attachSync, openWorkspace, type OpenWorkspaceOptions } from './attach.js';
export { workspaceDatabaseName, SyncEngine, type AttachSyncOptions, type SyncRunResult } from './engine.js';
export { TableDeclarationError, type TableConventionOptions } from './table-conventions.js';
export { WorkspaceMismatchError } from './people/ownership.js';
export { UnsyncedWritesError, type RemovedUserData, type SignOutOptions, type UnsyncedWrites } from './people/sign-out.js';
export type { AccessChange } from './people/access.js';
export {
  GatewayProvider,
  type GatewayProviderOptions,
  type GetToken,
  type Workspace,
  type WorkspaceMember,
} from './gateway/gateway-provider.js';
export {
  SUBSCRIBE_SUBPROTOCOL,
  SUBSCRIBE_PUSH_SUBPROTOCOL,
  type WebSocketConstructor,
  type WebSocketLike,
} from './gateway/websocket.js';
export * from './events.js';
export { syncStateOf, type SyncState, type SyncStateInput, type ChannelState } from './sync-status.js';
export type { EngineStatus } from './engine-status.js';
export { serverMismatches } from './server-config.js';
export { compareStamps, type Stamp } from '@or3/sync-protocol';
export { winsOver } from './lww.js';
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
} from '@or3/sync-protocol';
export {
  ENGINE_TABLES,
  ENGINE_TABLE_PREFIX,
  STATE_TABLE,
  TOMBSTONES_TABLE,
  RUNS_TABLE,
  STAGING_TABLE,
  type DeleteMode,
  type SyncedTableOptions,
  type TombstoneRow,
  type SyncRunRow,
} from './schema.js';
export { OUTBOX_TABLE, type HoldReason, type PendingOpRow } from './outbox/index.js';
export { CaptureError } from './capture/index.js';
export type { BackoffOptions } from './backoff.js';
export type { LockManagerLike } from './leader.js';
