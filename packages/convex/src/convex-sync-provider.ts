/**
 * `ConvexSyncProvider`: the client engine's `SyncProvider` in direct mode.
 * Push goes through the `push` mutation, pull and snapshot through queries,
 * subscribe through a reactive query (`onUpdate` on `watchChanges`); since
 * Convex queries cannot write, the provider reports applied cursors with the
 * `ackCursor` mutation. Auth comes from an injected `AuthTokenBroker`.
 */
import type {
  ChangesBatch,
  ChangesPage,
  OpResult,
  PushOp,
  PushResponse,
  SnapshotItem,
  SnapshotPage,
  SyncProvider,
  SyncProviderError,
  SyncScope,
  Unsubscribe,
} from '@or3/sync-client';
import { compactJsonBytes } from '@or3/sync-protocol';
import type { FunctionReference } from 'convex/server';
import { api } from '../convex/_generated/api.js';
import { sizeOf } from '../convex/lib/budget.js';
import type { WatchedChanges } from '../convex/lib/changes.js';
import { CONVEX_MAX_PAYLOAD_BYTES, checkConvexStorable } from '../convex/lib/convexLimits.js';
import { MAX_OPS_PER_PUSH } from '../convex/lib/push.js';
import type { AuthTokenBroker } from './auth-token-broker.js';
import { requestErrorData, toSyncProviderError } from './provider-errors.js';

/**
 * The part of Convex's `ConvexClient` (from `convex/browser`) the provider
 * uses. A `ConvexClient` is one; tests pass an adapter over convex-test.
 */
export interface ConvexTransport {
  query(query: FunctionReference<'query'>, args: Record<string, unknown>): Promise<unknown>;
  mutation(mutation: FunctionReference<'mutation'>, args: Record<string, unknown>): Promise<unknown>;
  onUpdate(
    query: FunctionReference<'query'>,
    args: Record<string, unknown>,
    callback: (result: unknown) => unknown,
    onError?: (error: Error) => unknown,
  ): () => void;
  setAuth(
    fetchToken: (args: { forceRefreshToken: boolean }) => Promise<string | null | undefined>,
    onChange?: (isAuthenticated: boolean) => void,
  ): void;
}

/** Where the sync functions are deployed; defaults to this package's `convex/sync.ts`. */
export interface SyncFunctionReferences {
  push: FunctionReference<'mutation'>;
  pull: FunctionReference<'query'>;
  watchChanges: FunctionReference<'query'>;
  ackCursor: FunctionReference<'mutation'>;
  snapshot: FunctionReference<'query'>;
  getRecord: FunctionReference<'query'>;
}

/** How to build a `ConvexSyncProvider`. */
export interface ConvexSyncProviderOptions {
  /** A `ConvexClient` for the deployment (the app creates and closes it). */
  client: ConvexTransport;
  /** Mints tokens for Convex, e.g. `clerkTokenBroker(clerk.session)`. Omit when the app already called `client.setAuth`. */
  tokenBroker?: AuthTokenBroker;
  /** Called when Convex accepts or refuses the broker's tokens. */
  onAuthChange?: (isAuthenticated: boolean) => void;
  /** The sync functions, when the app mounts them under other module names. */
  functions?: Partial<SyncFunctionReferences>;
  /** Largest payload to send; defaults to (and may not exceed) what the Convex backend stores. */
  maxPayloadBytes?: number;
}

/** Payload bytes (as Convex counts them) per push call: each is written twice, within a 16 MiB transaction. */
export const PUSH_CALL_BYTES = 5 * 1024 * 1024;

const DEFAULT_FUNCTIONS: SyncFunctionReferences = {
  push: api.sync.push,
  pull: api.sync.pull,
  watchChanges: api.sync.watchChanges,
  ackCursor: api.sync.ackCursor,
  snapshot: api.sync.snapshot,
  getRecord: api.sync.getRecord,
};

/** The Convex backend as a `SyncProvider`. */
export class ConvexSyncProvider implements SyncProvider {
  readonly mode = 'direct' as const;
  readonly maxPayloadBytes: number;
  readonly lastRateLimitRemaining = null;

  private readonly client: ConvexTransport;
  private readonly functions: SyncFunctionReferences;
  private readonly subscriptions = new Set<Unsubscribe>();
  /** Highest position reported per device and scope, so each is sent once. */
  private readonly reported = new Map<string, number>();
  private acks: Promise<void> = Promise.resolve();
  private disposed = false;

  constructor(options: ConvexSyncProviderOptions) {
    this.client = options.client;
    this.functions = { ...DEFAULT_FUNCTIONS, ...options.functions };
    this.maxPayloadBytes = Math.min(options.maxPayloadBytes ?? CONVEX_MAX_PAYLOAD_BYTES, CONVEX_MAX_PAYLOAD_BYTES);
    const broker = options.tokenBroker;
    if (broker !== undefined) {
      this.client.setAuth(({ forceRefreshToken }) => broker.getToken({ forceRefresh: forceRefreshToken }), options.onAuthChange);
    }
  }

  /**
   * Pushes ops in order. Ops whose payload Convex could not even carry as an
   * argument (over the payload limit, arrays over 8192, `$` field names, ...)
   * are rejected here with the code the server would give; the rest go in
   * calls of at most 500 ops and `PUSH_CALL_BYTES`, and a call the server
   * refuses as `batch_too_large` is split in half and sent again (retries are
   * idempotent). A single op that still does not fit throws a 413.
   */
  async push(scope: SyncScope, ops: PushOp[]): Promise<PushResponse> {
    const results: Array<OpResult | undefined> = new Array(ops.length);
    const sendable: Array<{ index: number; op: PushOp }> = [];
    for (const [index, op] of ops.entries()) {
      const rejection = this.localRejection(op);
      if (rejection === null) sendable.push({ index, op });
      else results[index] = rejection;
    }
    let serverVersion = 0;
    let serverTime: number | undefined;
    for (const chunk of chunksOf(sendable)) {
      const response = await this.pushChunk(scope, chunk.map((entry) => entry.op));
      response.results.forEach((result, i) => {
        results[chunk[i]!.index] = result;
      });
      serverVersion = Math.max(serverVersion, response.server_version);
      if (response.server_time !== undefined) serverTime = response.server_time;
    }
    const response: PushResponse = { results: results as OpResult[], server_version: serverVersion };
    if (serverTime !== undefined) response.server_time = serverTime;
    return response;
  }

  /** Changes after `cursor`; reports `cursor` as this device's applied position. */
  async pull(scope: SyncScope, cursor: number, limit?: number): Promise<ChangesPage> {
    const args: Record<string, unknown> = { ...scopeArgs(scope), cursor };
    if (limit !== undefined) args.limit = limit;
    const page = (await this.call(() => this.client.query(this.functions.pull, args))) as ChangesPage;
    this.reportPosition(scope, cursor);
    return page;
  }

  /** One snapshot page; the first registers `snapshot_version` as this device's position, so GC waits for it. */
  async snapshot(scope: SyncScope, pageToken: string | null): Promise<SnapshotPage> {
    const page = (await this.call(() =>
      this.client.query(this.functions.snapshot, { ...scopeArgs(scope), page_token: pageToken }),
    )) as SnapshotPage;
    if (pageToken === null) this.reportPosition(scope, page.snapshot_version);
    return page;
  }

  /** The server's version of one record, or null. */
  async getRecord(scope: SyncScope, tableName: string, pk: string): Promise<SnapshotItem | null> {
    return (await this.call(() =>
      this.client.query(this.functions.getRecord, { workspace_id: scope.workspaceId, table_name: tableName, pk }),
    )) as SnapshotItem | null;
  }

  /**
   * Delivers changes after `cursor` as Convex pushes new results of
   * `watchChanges`. Each batch covers `(from, to]`; after `onChanges`
   * settles, the provider reports `to` and listens from there.
   */
  subscribe(
    scope: SyncScope,
    cursor: number,
    onChanges: (batch: ChangesBatch) => void | Promise<void>,
    onError: (error: SyncProviderError) => void,
  ): Unsubscribe {
    let current = cursor;
    let stopped = false;
    let delivering = false;
    let listening: (() => void) | null = null;

    const stop: Unsubscribe = () => {
      if (stopped) return;
      stopped = true;
      listening?.();
      listening = null;
      this.subscriptions.delete(stop);
    };
    const fail = (error: unknown) => {
      if (stopped) return;
      stop();
      onError(toSyncProviderError(error));
    };
    const deliver = async (result: WatchedChanges) => {
      if (stopped || delivering || result.cursor <= current) return;
      delivering = true;
      listening?.();
      listening = null;
      try {
        await onChanges({ changes: result.changes, from: current, to: result.cursor });
      } catch (error) {
        fail(error);
        return;
      }
      current = result.cursor;
      delivering = false;
      this.reportPosition(scope, current);
      listen();
    };
    const listen = () => {
      if (stopped) return;
      listening = this.client.onUpdate(
        this.functions.watchChanges,
        { ...scopeArgs(scope), cursor: current },
        // Deferred, so a result Convex has cached (delivered during onUpdate) finds `listening` set.
        (result) => void Promise.resolve().then(() => deliver(result as WatchedChanges)),
        fail,
      );
    };

    this.subscriptions.add(stop);
    listen();
    return stop;
  }

  /** Resolves once every position reported so far has reached the server (or failed). */
  flushAcks(): Promise<void> {
    return this.acks;
  }

  /** Stops every subscription. The Convex client stays open: the app owns it. */
  dispose(): void {
    this.disposed = true;
    for (const stop of [...this.subscriptions]) stop();
  }

  private async pushChunk(scope: SyncScope, ops: PushOp[]): Promise<PushResponse> {
    try {
      return (await this.client.mutation(this.functions.push, { workspace_id: scope.workspaceId, ops })) as PushResponse;
    } catch (error) {
      if (requestErrorData(error)?.code !== 'batch_too_large' || ops.length < 2) throw toSyncProviderError(error);
      const half = Math.ceil(ops.length / 2);
      const first = await this.pushChunk(scope, ops.slice(0, half));
      const second = await this.pushChunk(scope, ops.slice(half));
      const merged: PushResponse = {
        results: [...first.results, ...second.results],
        server_version: Math.max(first.server_version, second.server_version),
      };
      const time = second.server_time ?? first.server_time;
      if (time !== undefined) merged.server_time = time;
      return merged;
    }
  }

  /** The rejection the server would give an op that cannot even be sent, or null. */
  private localRejection(op: PushOp): OpResult | null {
    if (op.payload === null || typeof op.payload !== 'object') return null;
    const bytes = compactJsonBytes(op.payload);
    if (bytes > this.maxPayloadBytes) {
      return {
        op_id: op.op_id,
        status: 'rejected',
        error: { code: 'payload_too_large', message: `payload is ${bytes} bytes of JSON; the limit is ${this.maxPayloadBytes}`, field: 'payload' },
      };
    }
    const problem = checkConvexStorable(op.payload);
    if (problem === null) return null;
    return { op_id: op.op_id, status: 'rejected', error: { code: problem.code, message: problem.message, field: 'payload' } };
  }

  /** Reports a durably applied cursor for GC; in the background, in order, once per new position. */
  private reportPosition(scope: SyncScope, cursor: number): void {
    if (scope.deviceId === undefined || this.disposed) return;
    const key = `${scope.workspaceId}\u0000${scope.projectId ?? ''}\u0000${scope.deviceId}`;
    if ((this.reported.get(key) ?? -1) >= cursor) return;
    this.reported.set(key, cursor);
    const args = { ...scopeArgs(scope), device_id: scope.deviceId, cursor };
    this.acks = this.acks.then(
      () => this.client.mutation(this.functions.ackCursor, args).then(() => undefined),
    ).catch(() => {
      // A lost report only holds back GC; the next pull or batch reports again.
      this.reported.delete(key);
    });
  }

  private async call<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      throw toSyncProviderError(error);
    }
  }
}

function scopeArgs(scope: SyncScope): Record<string, unknown> {
  const args: Record<string, unknown> = { workspace_id: scope.workspaceId };
  if (scope.projectId !== undefined && scope.projectId !== null) args.project_id = scope.projectId;
  return args;
}

/** Splits ops into calls of at most `MAX_OPS_PER_PUSH` ops and `PUSH_CALL_BYTES` of payload. */
function chunksOf<T extends { op: PushOp }>(entries: T[]): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = sizeOf(entry.op.payload ?? null);
    if (current.length > 0 && (current.length === MAX_OPS_PER_PUSH || bytes + size > PUSH_CALL_BYTES)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
