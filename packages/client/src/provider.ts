/**
 * The backend seam: the engine talks to any backend through `SyncProvider`
 * and never knows which one it is. `GatewayProvider` (HTTP) lives in
 * `gateway/gateway-provider.ts`; the Convex package implements the same interface.
 */
import type {
  ChangesPage,
  PushOp,
  PushResponse,
  SnapshotItem,
  SnapshotPage,
  SyncErrorCode,
  Change,
} from '@or3/sync-protocol';

/** How a subscription receives changes, best first. */
export type RealtimeTransport = 'websocket' | 'sse' | 'poll';

/** What a subscription reports about its connection, for telemetry and tests. */
export interface RealtimeState {
  workspaceId: string;
  transport: RealtimeTransport;
  /** True once the transport is open (socket open, stream answering, first poll done). */
  connected: boolean;
}

/** What a request reads or writes: a workspace, optionally narrowed to one project. */
export interface SyncScope {
  workspaceId: string;
  /** Threads and messages of this project only; other tables are always in scope. */
  projectId?: string | null;
  /**
   * The calling device (16 to 64 lowercase hex chars). Requests that move a cursor
   * report it (`X-Device-Id`, Convex `ackCursor`) so the server can hold back GC.
   * The engine always sets it.
   */
  deviceId?: string;
}

/** A batch of changes delivered by a subscription, covering versions (from, to]. */
export interface ChangesBatch {
  changes: Change[];
  /** Exclusive lower bound of the versions covered. */
  from: number;
  /** Highest version covered; the cursor to store after applying. */
  to: number;
}

/** Stops a subscription. Safe to call twice. */
export type Unsubscribe = () => void;

/** What the engine tells a subscription besides where to start. */
export interface SubscribeOptions {
  /**
   * The cursor the engine has durably applied (null before its first
   * snapshot). A provider that reconnects or says hello again resumes from
   * it, never from what it merely received.
   */
  appliedCursor?: () => Promise<number | null>;
}

/** One table a server syncs, and the payload field that holds its primary key. */
export interface ServerTable {
  name: string;
  /** The row field equal to an op's `pk` (`id` unless the server was told otherwise). */
  primaryKey: string;
}

/** What a server syncs and the limits of a push (the gateway's `GET /v1/config`). */
export interface ServerDescription {
  /** The synced tables, by name. */
  tables: ServerTable[];
  /** Most ops in one push. */
  maxOpsPerPush: number;
  /** Largest payload of one op, in bytes of JSON. */
  maxPayloadBytes: number;
}

/** A backend that orders changes and fans them out. */
export interface SyncProvider {
  /** `direct`: the client talks to the backend's functions (Convex); `gateway`: the or3-sync server. */
  readonly mode: 'direct' | 'gateway';
  /** Largest accepted payload of one op, in bytes of JSON. */
  readonly maxPayloadBytes: number;
  /** `RateLimit-Remaining` of the latest push's answer (the push budget), when the backend reports one. */
  readonly lastRateLimitRemaining?: number | null;
  /** Most ops the backend takes in one push, once it told (`describeServer()`); the push loop sends a backlog in batches of that size. */
  readonly maxOpsPerPush?: number | null;
  /** Pushes ops in order; one result per op. Throws `SyncProviderError` for the whole request. */
  push(scope: SyncScope, ops: PushOp[]): Promise<PushResponse>;
  /** Changes after `cursor`, ascending, at most `limit`. Throws `cursor_expired` (410) when too old. */
  pull(scope: SyncScope, cursor: number, limit?: number): Promise<ChangesPage>;
  /**
   * One page of the current state; `pageToken` null starts a snapshot. `tables` narrows it to
   * those tables (the gateway's `tables=`); a provider may ignore it and answer every table
   * (the engine keeps only the tables it asked for).
   */
  snapshot(scope: SyncScope, pageToken: string | null, tables?: readonly string[]): Promise<SnapshotPage>;
  /** The server's current version of one record, or null when it has none. */
  getRecord?(scope: SyncScope, tableName: string, pk: string): Promise<SnapshotItem | null>;
  /**
   * Calls `onChanges` with new changes after `cursor`, in order, until unsubscribed.
   * `onChanges` may return a promise; the provider awaits it before delivering more,
   * and a batch handed over is one the engine applies with its cursor.
   * Errors that end the subscription (`cursor_expired`, `forbidden`, ...) go to `onError`;
   * passing trouble (a dropped connection, a restarting server) is the provider's to retry.
   */
  subscribe(
    scope: SyncScope,
    cursor: number,
    onChanges: (batch: ChangesBatch) => void | Promise<void>,
    onError: (error: SyncProviderError) => void,
    options?: SubscribeOptions,
  ): Unsubscribe;
  /**
   * Calls `listener` when a subscription's transport connects or disconnects,
   * for providers that can tell (bindings show it as the realtime transport).
   * Returns a function that removes the listener.
   */
  onRealtimeState?(listener: (state: RealtimeState) => void): Unsubscribe;
  /**
   * The id of the user the current token belongs to (a JWT's `sub`), or null when the token
   * does not say; read without verifying (the server verifies). The engine pushes nothing
   * while it differs from the `userId` the app attached with. Optional: without it the engine
   * takes the app's word.
   */
  tokenUserId?(): Promise<string | null>;
  /**
   * The tables the backend syncs (with their primary key fields) and its push limits,
   * for backends that can tell (the gateway: `GET /v1/config`).
   */
  describeServer?(): Promise<ServerDescription>;
  /** Releases timers, sockets and subscriptions. */
  dispose(): void;
}

/** Everything a provider knows about a failed request. */
export interface SyncProviderErrorInit {
  code: SyncErrorCode;
  message: string;
  /** HTTP status, or 0 for a network failure. */
  status: number;
  /** From `Retry-After`, in ms, when the backend asked to wait. */
  retryAfterMs?: number | null;
  /** From `RateLimit-Remaining`, when known. */
  rateLimitRemaining?: number | null;
  /** From a 410 `cursor_expired` answer. */
  oldestRetainedVersion?: number | null;
  field?: string | null;
  cause?: unknown;
}

/** A request-level failure, typed by protocol error code. */
export class SyncProviderError extends Error {
  readonly code: SyncErrorCode;
  readonly status: number;
  readonly retryAfterMs: number | null;
  readonly rateLimitRemaining: number | null;
  readonly oldestRetainedVersion: number | null;
  readonly field: string | null;

  constructor(init: SyncProviderErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'SyncProviderError';
    this.code = init.code;
    this.status = init.status;
    this.retryAfterMs = init.retryAfterMs ?? null;
    this.rateLimitRemaining = init.rateLimitRemaining ?? null;
    this.oldestRetainedVersion = init.oldestRetainedVersion ?? null;
    this.field = init.field ?? null;
  }

  /** Network errors, 5xx, 429 and 408: worth retrying with backoff. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** Narrowing helper that survives duplicated module copies. */
export function isSyncProviderError(value: unknown): value is SyncProviderError {
  return (
    value instanceof SyncProviderError ||
    (typeof value === 'object' && value !== null && (value as { name?: unknown }).name === 'SyncProviderError')
  );
}
