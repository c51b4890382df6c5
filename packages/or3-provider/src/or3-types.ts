/**
 * OR3 Chat's sync and workspace interfaces, re-declared from their published
 * field shapes (OR3 is not a dependency of this package): what its
 * `/api/sync/*` routes hand a `SyncGatewayAdapter`, what its session code asks
 * of an `AuthWorkspaceStore`, and what its browser engine asks of a
 * `SyncProvider`. Camel-case, as OR3's wire is.
 */

/** The data partition of a sync call. */
export interface SyncScope {
  workspaceId: string;
  projectId?: string;
}

/** The stamp of one write; revisions order by `(clock, hlc, opId)`. */
export interface ChangeStamp {
  deviceId: string;
  opId: string;
  /** OR3's HLC: `<ms base36, 9>:<counter base36, 3>:<node, 8 hex>`. */
  hlc: string;
  clock: number;
}

/** An outbox op as OR3's engine pushes it. */
export interface PendingOp {
  id: string;
  tableName: string;
  operation: 'put' | 'delete';
  pk: string;
  payload?: unknown;
  stamp: ChangeStamp;
  createdAt: number;
  attempts: number;
  status: string;
}

/** One change of a pull page. */
export interface SyncChange {
  serverVersion: number;
  tableName: string;
  pk: string;
  op: 'put' | 'delete';
  payload?: unknown;
  stamp: ChangeStamp;
}

export interface PullRequest {
  scope: SyncScope;
  cursor: number;
  /** At most 1000 in OR3. */
  limit: number;
  tables?: string[];
}

export interface PullResponse {
  changes: SyncChange[];
  nextCursor: number;
  hasMore: boolean;
  oldestRetainedVersion: number;
  requiresSnapshot: boolean;
}

export interface SnapshotRequest {
  scope: SyncScope;
  /** At most 1000 in OR3. */
  pageSize: number;
  pageToken?: string;
  tables?: string[];
}

export interface SnapshotRevision {
  clock: number;
  hlc: string;
  opId: string;
}

export type SnapshotItem =
  | { kind: 'row'; tableName: string; pk: string; payload: unknown; revision: SnapshotRevision }
  | { kind: 'tombstone'; tableName: string; pk: string; revision: SnapshotRevision; serverDeletedAt: number };

export interface SnapshotResponse {
  workspaceId: string;
  snapshotId: string;
  highWatermark: number;
  items: SnapshotItem[];
  nextPageToken: string | null;
}

export interface PushBatch {
  scope: SyncScope;
  /** At most 100 in OR3. */
  ops: PendingOp[];
}

/** OR3's error codes; the first three and `OVERSIZED` are permanent for its engine. */
export type SyncErrorCode =
  | 'VALIDATION_ERROR'
  | 'UNAUTHORIZED'
  | 'CONFLICT'
  | 'NOT_FOUND'
  | 'RATE_LIMITED'
  | 'OVERSIZED'
  | 'NETWORK_ERROR'
  | 'SERVER_ERROR'
  | 'UNKNOWN';

/** The stored version a pushed op lost to. */
export type PushWinner =
  | { kind: 'put'; payload: Record<string, unknown>; revision: SnapshotRevision }
  | { kind: 'delete'; revision: SnapshotRevision; serverDeletedAt?: number };

export interface PushOpResult {
  opId: string;
  success: boolean;
  serverVersion?: number;
  error?: string;
  errorCode?: SyncErrorCode;
  applied?: boolean;
  replayed?: boolean;
  winner?: PushWinner;
}

export interface PushResult {
  results: PushOpResult[];
  serverVersion: number;
}

export interface AdapterCapabilities {
  snapshotBootstrap?: 'snapshot-v1';
  historyRetention?: 'snapshot-v1';
}

/** What OR3's `/api/sync/*` routes call, with the request event `E` (h3's `H3Event`). */
export interface SyncGatewayAdapter<E = unknown> {
  id: string;
  capabilities?: AdapterCapabilities;
  pull(event: E, input: PullRequest): Promise<PullResponse>;
  snapshot?(event: E, input: SnapshotRequest): Promise<SnapshotResponse>;
  push(event: E, input: PushBatch): Promise<PushResult>;
  updateCursor(event: E, input: { scope: { workspaceId: string }; deviceId: string; version: number }): Promise<void>;
  gcTombstones?(event: E, input: { scope: { workspaceId: string }; retentionSeconds: number }): Promise<void>;
  gcChangeLog?(event: E, input: { scope: { workspaceId: string }; retentionSeconds: number }): Promise<void>;
}

export type WorkspaceRole = 'owner' | 'editor' | 'viewer';

/** One workspace as OR3 lists it. */
export interface WorkspaceSummary {
  id: string;
  name: string;
  role: WorkspaceRole;
  isActive?: boolean;
}

/** OR3's workspace persistence for its session code. */
export interface AuthWorkspaceStore {
  getUser?(input: { provider: string; providerUserId: string }): Promise<{ userId: string } | null>;
  getOrCreateUser(input: { provider: string; providerUserId: string; email?: string; displayName?: string }): Promise<{ userId: string }>;
  getOrCreateDefaultWorkspace(userId: string): Promise<{ workspaceId: string; workspaceName: string; created?: boolean }>;
  getWorkspaceRole(input: { userId: string; workspaceId: string }): Promise<WorkspaceRole | null>;
  listUserWorkspaces(userId: string): Promise<WorkspaceSummary[]>;
  createWorkspace(input: { userId: string; name: string; description?: string | null }): Promise<{ workspaceId: string }>;
  updateWorkspace(input: { userId: string; workspaceId: string; name: string; description?: string | null }): Promise<void>;
  removeWorkspace(input: { userId: string; workspaceId: string }): Promise<void>;
  setActiveWorkspace(input: { userId: string; workspaceId: string }): Promise<void>;
}

/** The registries OR3's server plugins register into (`~~/server/sync/gateway/registry`, `~~/server/auth/store/registry`). */
export interface Or3ServerRegistries<E = unknown> {
  registerSyncGatewayAdapter(item: { id: string; order?: number; create: () => SyncGatewayAdapter<E> }): void;
  registerAuthWorkspaceStore(item: { id: string; order?: number; create: (event?: E) => AuthWorkspaceStore }): void;
}

/** OR3's browser-side backend seam (`~~/shared/sync/types` `SyncProvider`), mode `gateway`. */
export interface SyncProvider {
  id: string;
  mode: 'direct' | 'gateway';
  capabilities?: AdapterCapabilities;
  subscribe(
    scope: SyncScope,
    tables: string[],
    onChanges: (changes: SyncChange[]) => void | Promise<void>,
    options?: { cursor?: number; limit?: number },
  ): Promise<() => void>;
  pull(request: PullRequest): Promise<PullResponse>;
  snapshot?(request: SnapshotRequest): Promise<SnapshotResponse>;
  push(batch: PushBatch): Promise<PushResult>;
  updateCursor(scope: SyncScope, deviceId: string, version: number): Promise<void>;
  gcTombstones?(scope: SyncScope, retentionSeconds: number): Promise<void>;
  gcChangeLog?(scope: SyncScope, retentionSeconds: number): Promise<void>;
  dispose(): Promise<void>;
}
