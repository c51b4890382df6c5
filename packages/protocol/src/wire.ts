/**
 * Wire types of or3-sync protocol version 1 (PROTOCOL.md section 4).
 *
 * These are the JSON shapes exchanged with any backend, field names in
 * `snake_case` exactly as on the wire. The client engine, its gateway provider
 * and the Convex functions all use these; keep them stable.
 */

/** Protocol version these types describe. */
export const PROTOCOL_VERSION = 1 as const;

/** A synced row as JSON: the app's fields plus the sync fields. */
export type RecordPayload = Record<string, unknown>;

/** Kind of a local write as sent on the wire. Soft and hard deletes are both `delete`. */
export type Operation = 'put' | 'delete';

/** One captured local write, as pushed to the backend. */
export interface PushOp {
  /** UUID, unique forever; the idempotency key (per workspace). */
  op_id: string;
  table_name: string;
  operation: Operation;
  /** Primary key of the record (`id`, or `hash` for `file_meta`). */
  pk: string;
  /** The row itself; for a delete, the tombstone row or null. */
  payload: RecordPayload | null;
  /** The record's new per-record version. */
  clock: number;
  /** HLC stamp `"<ms:13>-<counter:6>-<device_id>"`. */
  hlc: string;
  /** 16 to 64 lowercase hex chars; equals the HLC suffix. */
  device_id: string;
}

/** Body of `POST /v1/workspaces/{id}/push`. */
export interface PushRequest {
  ops: PushOp[];
}

/** Outcome status of one pushed op. */
export type OpStatus = 'applied' | 'duplicate' | 'superseded' | 'rejected';

/** Codes of a per-op rejection (docs/ERRORS.md, "Per-op rejections"). Only `clock_skew` is retryable. */
export const REJECTION_CODES = [
  'unknown_table',
  'invalid_pk',
  'payload_too_large',
  'pk_mismatch',
  'invalid_hlc',
  'invalid_op',
  'clock_skew',
  // The op id was applied before by an op with other content (decided by the push, not by validation).
  'op_id_reused',
] as const;

/** Codes of a per-op rejection. Only `clock_skew` is retryable. */
export type RejectionCode = (typeof REJECTION_CODES)[number];

/** The stored version that beat a superseded op, whole. */
export interface Winner {
  clock: number;
  hlc: string;
  op_id: string;
  server_version: number;
  deleted: boolean;
  /** Null when a purged tombstone only keeps its stamp. */
  payload: RecordPayload | null;
}

/** Error detail of a rejected op. */
export interface OpRejection {
  code: RejectionCode;
  message: string;
  /** True only for `clock_skew`: re-stamp and push again. */
  retryable?: boolean;
  field?: string;
}

/** The op won and is in the log at `server_version`. */
export interface AppliedResult {
  op_id: string;
  status: 'applied';
  server_version: number;
}

/** The op (same op_id or same stamp) was applied before. */
export interface DuplicateResult {
  op_id: string;
  status: 'duplicate';
  /** The original version, when still known. */
  server_version?: number | null;
}

/** The op lost LWW; `winner` is the stored version to apply locally. */
export interface SupersededResult {
  op_id: string;
  status: 'superseded';
  winner: Winner;
}

/** The op is invalid. */
export interface RejectedResult {
  op_id: string;
  status: 'rejected';
  error: OpRejection;
}

/** Per-op outcome of a push, one per op in request order. */
export type OpResult = AppliedResult | DuplicateResult | SupersededResult | RejectedResult;

/** Body of a 200 answer to a push. */
export interface PushResponse {
  results: OpResult[];
  server_version: number;
  /** Server wall time, epoch ms; feeds the client's clock offset. */
  server_time?: number;
}

/** One entry of the change log. */
export interface Change {
  server_version: number;
  table_name: string;
  pk: string;
  operation: Operation;
  payload: RecordPayload | null;
  clock: number;
  hlc: string;
  op_id: string;
  device_id: string;
  /** A thread that moved between projects; a project-scoped client rescans. */
  scope_change?: boolean;
  /** The server's commit time of this entry, epoch ms (the gateway sends it). */
  committed_at?: number;
}

/** Answer of `GET /v1/workspaces/{id}/changes`. */
export interface ChangesPage {
  changes: Change[];
  /** Highest version this answer examined; may advance with no changes. */
  cursor: number;
  has_more: boolean;
  oldest_retained_version?: number;
  server_time?: number;
}

/** Current state of one record, tombstones included. Also the `records` endpoint's shape. */
export interface SnapshotItem {
  table_name: string;
  pk: string;
  payload: RecordPayload | null;
  deleted: boolean;
  clock: number;
  hlc: string;
  op_id: string;
  server_version: number;
  /** The server's commit time of this version (of the delete, for a tombstone), epoch ms (the gateway sends it). */
  committed_at?: number;
}

/** One page of `GET /v1/workspaces/{id}/snapshot`. */
export interface SnapshotPage {
  snapshot_version: number;
  items: SnapshotItem[];
  /** Opaque; null on the last page. */
  next_page_token: string | null;
  server_time?: number;
}

/** A member's role in a workspace: `editor` pushes and pulls, `viewer` only pulls, `owner` also manages members. */
export type WorkspaceRole = 'owner' | 'editor' | 'viewer';

/** A workspace as its member sees it: the answer of `POST /v1/workspaces`, and each of `GET /v1/workspaces`. */
export interface WorkspaceInfo {
  workspace_id: string;
  name: string;
  /** The caller's role. */
  role: WorkspaceRole;
}

/** Answer of `GET /v1/workspaces`: the caller's workspaces. */
export interface WorkspaceList {
  workspaces: WorkspaceInfo[];
}

/** Answer of `PUT /v1/workspaces/{id}/members/{user_id}`. */
export interface MemberInfo {
  workspace_id: string;
  user_id: string;
  role: WorkspaceRole;
}

/** Answer of the gateway's `GET /v1/config`: the synced tables (`pk`: the payload field equal to an op's pk) and push limits. */
export interface GatewayConfig {
  tables: { name: string; pk: string }[];
  max_ops_per_push: number;
  max_payload_bytes: number;
}

/**
 * Every error code a backend, a provider or the engine reports: the one list of docs/ERRORS.md
 * (the gateway's request and stream codes, per-op rejections, and the codes only Convex or the
 * client gives). `test/error-codes.test.ts` checks it against that file.
 */
export const SYNC_ERROR_CODES = [
  // The gateway: requests.
  'invalid_json',
  'invalid_request',
  'json_too_deep',
  'invalid_query',
  'invalid_limit',
  'invalid_cursor',
  'invalid_project_id',
  'invalid_workspace_id',
  'invalid_path',
  'invalid_user_id',
  'invalid_name',
  'invalid_device_id',
  'invalid_page_token',
  'cursor_ahead',
  'missing_token',
  'invalid_token',
  'invalid_signature',
  'unknown_key',
  'token_expired',
  'token_not_yet_valid',
  'invalid_issuer',
  'invalid_azp',
  'forbidden',
  'unknown_workspace',
  'not_found',
  'body_timeout',
  'last_owner',
  'membership_from_claims',
  'cursor_regression',
  'cursor_expired',
  'body_too_large',
  'too_many_ops',
  'rate_limited',
  'too_many_subscriptions',
  'internal',
  'store_unavailable',
  'metrics_unavailable',
  'draining',
  'too_many_connections',
  // The gateway: stream frames.
  'invalid_frame',
  'hello_timeout',
  'shutting_down',
  // Per-op rejections (`unknown_table` and `invalid_pk` are request codes too).
  ...REJECTION_CODES,
  // Only Convex or the client.
  'invalid_input',
  'unauthorized',
  'batch_too_large',
  'network_error',
  'invalid_response',
  'paused',
  'rescan_busy',
  'read_only',
  'user_mismatch',
] as const;

/** An error code of docs/ERRORS.md; a closed union, so a code outside the list does not compile. */
export type SyncErrorCode = (typeof SYNC_ERROR_CODES)[number];

const KNOWN_CODES: ReadonlySet<string> = new Set(SYNC_ERROR_CODES);

/** True for a code of the list: what a backend sent is checked before it is trusted. */
export function isSyncErrorCode(value: unknown): value is SyncErrorCode {
  return typeof value === 'string' && KNOWN_CODES.has(value);
}

/** Body of every error answer: `{"error": {...}}`. */
export interface WireErrorBody {
  error: {
    code: SyncErrorCode;
    message: string;
    field?: string;
    oldest_retained_version?: number;
  };
}

/** Default and maximum sizes from the protocol. */
export const PROTOCOL_LIMITS = {
  maxOpsPerPush: 500,
  maxPushBytes: 8 * 1024 * 1024,
  maxPayloadBytes: 1024 * 1024,
  defaultPullLimit: 500,
  maxPullLimit: 1000,
} as const;
