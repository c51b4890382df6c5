/**
 * `GatewayProvider`: the `SyncProvider` over the or3-sync server's HTTP API
 * (PROTOCOL.md section 4), with `fetch`; realtime delivery over a WebSocket,
 * Server-Sent Events or polling (`gateway-subscription.ts`).
 */
import {
  SyncProviderError,
  isSyncProviderError,
  type ChangesBatch,
  type SubscribeOptions,
  type ServerDescription,
  type SyncProvider,
  type RealtimeState,
  type RealtimeTransport,
  type SyncScope,
  type Unsubscribe,
} from '../provider.js';
import { DEFAULT_BACKOFF, type BackoffOptions } from '../backoff.js';
import {
  GatewaySubscription,
  type RealtimeSettings,
} from './gateway-subscription.js';
import { tokenSubject } from './token-claims.js';
import { errorFromWire } from './wire-error.js';
import type { WebSocketConstructor } from './websocket.js';
import {
  PROTOCOL_LIMITS,
  type ChangesPage,
  type GatewayConfig,
  type MemberInfo,
  type PushOp,
  type PushResponse,
  type SnapshotItem,
  type SnapshotPage,
  type WireErrorBody,
  type WorkspaceInfo,
  type WorkspaceList,
  type WorkspaceRole,
} from '@or3/sync-protocol';

/** Supplies the bearer token; `forceRefresh` is set after a 401. */
export type GetToken = (options: { forceRefresh: boolean }) => string | Promise<string>;

export interface GatewayProviderOptions {
  /** Server origin, e.g. `https://sync.example.com` (the `/v1` prefix is added). */
  baseUrl: string;
  getToken: GetToken;
  /** Defaults to the global `fetch`. */
  fetch?: typeof fetch;
  /** The server's per-op payload limit; 1 MiB by default. */
  maxPayloadBytes?: number;
  /** Interval of polling, the last fallback of `subscribe`; 2 s by default. */
  pollIntervalMs?: number;
  /**
   * The WebSocket constructor for `subscribe`; the global `WebSocket` by
   * default. Node 20 has none: pass the `ws` package's. Null: no WebSocket.
   */
  WebSocket?: WebSocketConstructor | null;
  /** Transports `subscribe` may use, best first; default websocket, then sse, then poll. */
  transports?: RealtimeTransport[];
  /** Failed connects in a row before `subscribe` steps down to the next transport; default 3. */
  fallbackAfterFailures?: number;
  /** After this long on a lesser transport, `subscribe` tries the better ones again; default 5 min. */
  upgradeAfterMs?: number;
  /** Refresh the token this long before its `exp` (read from the JWT); default 30 s. */
  tokenRefreshLeadMs?: number;
  /** Reconnect backoff of `subscribe`; default 250 ms doubling to 30 s, with jitter. */
  reconnectBackoff?: Partial<BackoffOptions>;
  /** Called when a subscription's transport connects or disconnects (telemetry, tests). */
  onRealtimeState?: (state: RealtimeState) => void;
  /** Randomness for reconnect jitter. */
  random?: () => number;
  /**
   * Snapshot page size. Default 1000, the gateway's largest page: a first sync writes each page
   * in one transaction, and fewer, bigger ones sync faster (P9, 1 000 000 records: 0.61 of a raw
   * bulkPut with the server's default of 500, 0.74 with 1000).
   */
  snapshotLimit?: number;
  /**
   * Longest wait for one HTTP request's whole answer; 60 s by default. A request past it fails
   * as a `network_error` and is retried with backoff (a push retry is idempotent), so a connection
   * that went silent cannot stall the push and pull loops, nor `engine.close()`.
   */
  requestTimeoutMs?: number;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** Snapshot items per page when the app names none: the gateway's largest page (`max_snapshot_limit`). */
const DEFAULT_SNAPSHOT_LIMIT = 1000;

/** A workspace as the caller sees it. */
export interface Workspace {
  workspaceId: string;
  name: string;
  /** The caller's role in it. */
  role: WorkspaceRole;
}

/** A member of a workspace and their role. */
export interface WorkspaceMember {
  workspaceId: string;
  userId: string;
  role: WorkspaceRole;
}

interface RequestOptions {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  query?: Record<string, string | number | null | undefined>;
  body?: unknown;
  deviceId?: string;
  /** A push: its answer's `RateLimit-Remaining` is the push budget the push loop reads (other route classes count apart). */
  push?: true;
}

/** Talks to one or3-sync server; one instance serves any number of workspaces. */
export class GatewayProvider implements SyncProvider {
  readonly mode = 'gateway' as const;
  readonly maxPayloadBytes: number;
  /** The gateway's `max_ops_per_push`, once `describeServer()` read it. */
  maxOpsPerPush: number | null = null;
  lastRateLimitRemaining: number | null = null;
  private readonly baseUrl: string;
  private readonly getToken: GetToken;
  private readonly fetchImpl: typeof fetch;
  private readonly snapshotLimit: number;
  private readonly requestTimeoutMs: number;
  private readonly realtime: RealtimeSettings;
  private readonly subscriptions = new Set<GatewaySubscription>();
  private readonly realtimeListeners = new Set<(state: RealtimeState) => void>();

  constructor(options: GatewayProviderOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.getToken = options.getToken;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.maxPayloadBytes = options.maxPayloadBytes ?? PROTOCOL_LIMITS.maxPayloadBytes;
    this.snapshotLimit = options.snapshotLimit ?? DEFAULT_SNAPSHOT_LIMIT;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const globalSocket = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? null;
    this.realtime = {
      WebSocket: options.WebSocket === undefined ? globalSocket : options.WebSocket,
      transports: options.transports ?? ['websocket', 'sse', 'poll'],
      fallbackAfterFailures: options.fallbackAfterFailures ?? 3,
      upgradeAfterMs: options.upgradeAfterMs ?? 5 * 60_000,
      tokenRefreshLeadMs: options.tokenRefreshLeadMs ?? 30_000,
      streamIdleTimeoutMs: 60_000,
      pollIntervalMs: options.pollIntervalMs ?? 2000,
      pushTimeoutMs: this.requestTimeoutMs,
      backoff: { ...DEFAULT_BACKOFF, maxMs: 30_000, ...options.reconnectBackoff },
      random: options.random ?? Math.random,
      onState: (state) => {
        options.onRealtimeState?.(state);
        for (const listener of [...this.realtimeListeners]) listener(state);
      },
    };
  }

  /** Adds a listener of every subscription's transport state; returns a function that removes it. */
  onRealtimeState(listener: (state: RealtimeState) => void): Unsubscribe {
    this.realtimeListeners.add(listener);
    return () => this.realtimeListeners.delete(listener);
  }

  /** The `sub` of the current token (read, not verified: the server verifies), or null when it has none. */
  async tokenUserId(): Promise<string | null> {
    return tokenSubject(await this.getToken({ forceRefresh: false }));
  }

  /**
   * Pushes over the workspace's open subscription socket when its gateway takes pushes there
   * (one hop on a warm connection instead of an HTTP request), else over HTTP. A push the socket
   * could not answer fails as a `network_error`, as an HTTP push does; one it refused for a
   * reason of its own (its hello not accepted, its token expired) goes over HTTP.
   */
  async push(scope: SyncScope, ops: PushOp[]): Promise<PushResponse> {
    for (const subscription of this.subscriptions) {
      if (subscription.workspaceId !== scope.workspaceId) continue;
      const sent = subscription.pushOverSocket(ops);
      if (!sent) continue;
      const outcome = await sent;
      if (outcome.kind === 'answered') return outcome.response;
      break;
    }
    return this.request<PushResponse>({
      method: 'POST',
      path: `${workspacePath(scope)}/push`,
      body: { ops },
      deviceId: scope.deviceId,
      push: true,
    });
  }

  pull(scope: SyncScope, cursor: number, limit?: number): Promise<ChangesPage> {
    return this.request<ChangesPage>({
      method: 'GET',
      path: `${workspacePath(scope)}/changes`,
      query: { cursor, limit, project_id: scope.projectId },
      deviceId: scope.deviceId,
    });
  }

  snapshot(scope: SyncScope, pageToken: string | null, tables?: readonly string[]): Promise<SnapshotPage> {
    return this.request<SnapshotPage>({
      method: 'GET',
      path: `${workspacePath(scope)}/snapshot`,
      query: { page_token: pageToken, limit: this.snapshotLimit, project_id: scope.projectId, tables: tables?.join(',') },
      deviceId: scope.deviceId,
    });
  }

  async getRecord(scope: SyncScope, tableName: string, pk: string): Promise<SnapshotItem | null> {
    try {
      return await this.request<SnapshotItem>({
        method: 'GET',
        path: `${workspacePath(scope)}/records/${encodeURIComponent(tableName)}/${encodeURIComponent(pk)}`,
        deviceId: scope.deviceId,
      });
    } catch (error) {
      // No such record, or a table the server does not sync: the server has no copy.
      if (isSyncProviderError(error) && (error.status === 404 || error.code === 'unknown_table')) return null;
      throw error;
    }
  }

  /**
   * Delivers new changes in realtime: over the server's WebSocket
   * (`/subscribe`), else its event stream (`/events`), else by polling
   * `changes` every `pollIntervalMs`. Reconnects with backoff and jitter,
   * resuming from `options.appliedCursor()`; pulls to fill a gap between
   * frames and after a poke; refreshes the token before it expires. Only
   * `cursor_expired`, 403, 404 and other permanent errors reach `onError`.
   */
  subscribe(
    scope: SyncScope,
    cursor: number,
    onChanges: (batch: ChangesBatch) => void | Promise<void>,
    onError: (error: SyncProviderError) => void,
    options: SubscribeOptions = {},
  ): Unsubscribe {
    const subscription = new GatewaySubscription(
      {
        baseUrl: this.baseUrl,
        fetch: this.fetchImpl,
        getToken: this.getToken,
        pull: (pullScope, from) => this.pull(pullScope, from),
        onRateLimitRemaining: (remaining) => this.noteRateLimitRemaining(remaining),
      },
      this.realtime,
      {
        scope,
        cursor,
        onChanges,
        onError: (error) => {
          this.subscriptions.delete(subscription);
          onError(error);
        },
        appliedCursor: options.appliedCursor,
      },
    );
    this.subscriptions.add(subscription);
    subscription.start();
    return () => {
      this.subscriptions.delete(subscription);
      subscription.stop();
    };
  }

  /** What the server syncs (`GET /v1/config`): its tables with their primary key fields, and its push limits. */
  async describeServer(): Promise<ServerDescription> {
    const config = await this.request<GatewayConfig>({ method: 'GET', path: '/config' });
    if (Number.isInteger(config.max_ops_per_push) && config.max_ops_per_push > 0) this.maxOpsPerPush = config.max_ops_per_push;
    return {
      tables: config.tables.map((table) => ({ name: table.name, primaryKey: table.pk })),
      maxOpsPerPush: config.max_ops_per_push,
      maxPayloadBytes: config.max_payload_bytes,
    };
  }

  /** Creates a workspace named `name`; the caller becomes its owner. */
  async createWorkspace(name: string): Promise<Workspace> {
    return workspaceFromWire(await this.request<WorkspaceInfo>({ method: 'POST', path: '/workspaces', body: { name } }));
  }

  /** The caller's workspaces, with the caller's role in each. */
  async listWorkspaces(): Promise<Workspace[]> {
    const list = await this.request<WorkspaceList>({ method: 'GET', path: '/workspaces' });
    return list.workspaces.map(workspaceFromWire);
  }

  /**
   * Adds `userId` to the workspace with `role` (an invitation: the user sees it in
   * `listWorkspaces()` with their next token), or changes their role. Owners only;
   * a workspace always keeps an owner (`last_owner`).
   */
  async setMemberRole(workspaceId: string, userId: string, role: WorkspaceRole): Promise<WorkspaceMember> {
    const member = await this.request<MemberInfo>({ method: 'PUT', path: memberPath(workspaceId, userId), body: { role } });
    return { workspaceId: member.workspace_id, userId: member.user_id, role: member.role };
  }

  /** Removes `userId` from the workspace (owners only); their open subscriptions end with `forbidden`. */
  async removeMember(workspaceId: string, userId: string): Promise<void> {
    await this.request<null>({ method: 'DELETE', path: memberPath(workspaceId, userId) });
  }

  dispose(): void {
    for (const subscription of this.subscriptions) subscription.stop();
    this.subscriptions.clear();
  }

  /**
   * Keeps the remaining push budget the latest push answer reported (an HTTP answer's `RateLimit-Remaining`,
   * a socket push answer's `rate_limit.remaining`), which the push loop reads to slow down before
   * it is refused; an answer without one leaves the last known count.
   */
  private noteRateLimitRemaining(remaining: number | null): void {
    if (remaining !== null) this.lastRateLimitRemaining = remaining;
  }

  /** One request, with one retry under a fresh token after a 401. */
  private async request<T>(options: RequestOptions): Promise<T> {
    try {
      return await this.send<T>(options, false);
    } catch (error) {
      if (isSyncProviderError(error) && error.status === 401) return this.send<T>(options, true);
      throw error;
    }
  }

  private async send<T>(options: RequestOptions, forceRefresh: boolean): Promise<T> {
    const token = await this.getToken({ forceRefresh });
    const url = new URL(`${this.baseUrl}/v1${options.path}`);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== null && value !== undefined) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
    if (options.deviceId) headers['x-device-id'] = options.deviceId;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    let text: string;
    // The deadline covers the answer's body too: a server can stall after its headers.
    const signal = AbortSignal.timeout(this.requestTimeoutMs);
    try {
      response = await this.fetchImpl(url, {
        method: options.method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal,
      });
      text = await response.text();
    } catch (cause) {
      const message = signal.aborted
        ? `request to ${url.pathname} got no answer within ${this.requestTimeoutMs} ms`
        : `request to ${url.pathname} failed`;
      throw new SyncProviderError({ code: 'network_error', message, status: 0, cause });
    }
    const remaining = numberHeader(response.headers.get('ratelimit-remaining'));
    // Pulls and snapshots have budgets of their own: a pull's larger one must not hide a push budget running out.
    if (options.push) this.noteRateLimitRemaining(remaining);
    const body = parseJson(text);
    if (!response.ok) throw errorFromResponse(response, body, remaining);
    if (response.status === 204) return null as T;
    if (body === undefined || body === null || typeof body !== 'object') {
      throw new SyncProviderError({ code: 'invalid_response', message: `non-JSON answer from ${url.pathname}`, status: response.status });
    }
    const record = body as Record<string, unknown>;
    if (record.server_time === undefined) {
      const date = Date.parse(response.headers.get('date') ?? '');
      // `Date` has 1 s resolution; its midpoint is the best estimate.
      if (Number.isFinite(date)) record.server_time = date + 500;
    }
    return body as T;
  }
}

function workspacePath(scope: SyncScope): string {
  return `/workspaces/${encodeURIComponent(scope.workspaceId)}`;
}

function memberPath(workspaceId: string, userId: string): string {
  return `${workspacePath({ workspaceId })}/members/${encodeURIComponent(userId)}`;
}

function workspaceFromWire(workspace: WorkspaceInfo): Workspace {
  return { workspaceId: workspace.workspace_id, name: workspace.name, role: workspace.role };
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function numberHeader(value: string | null): number | null {
  if (value === null || value.trim() === '') return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

/** `Retry-After` as seconds or an HTTP date, in ms. */
function retryAfterMs(value: string | null): number | null {
  if (value === null) return null;
  const seconds = numberHeader(value);
  if (seconds !== null) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : null;
}

function errorFromResponse(response: Response, body: unknown, remaining: number | null): SyncProviderError {
  const wire = (body as Partial<WireErrorBody> | undefined)?.error;
  return errorFromWire({
    status: response.status,
    error: wire,
    retryAfterMs: retryAfterMs(response.headers.get('retry-after')),
    rateLimitRemaining: remaining,
    oldestRetainedVersion:
      wire?.oldest_retained_version ??
      ((body as { oldest_retained_version?: number } | undefined)?.oldest_retained_version ?? null),
  });
}
