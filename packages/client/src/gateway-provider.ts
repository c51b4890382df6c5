/**
 * `GatewayProvider`: the `SyncProvider` over the or3-sync server's HTTP API
 * (PROTOCOL.md section 4), with `fetch`.
 */
import {
  SyncProviderError,
  isSyncProviderError,
  type ChangesBatch,
  type SyncProvider,
  type SyncScope,
  type Unsubscribe,
} from './provider.js';
import { backoffDelay, DEFAULT_BACKOFF, sleep } from './backoff.js';
import {
  PROTOCOL_LIMITS,
  type ChangesPage,
  type PushOp,
  type PushResponse,
  type SnapshotItem,
  type SnapshotPage,
  type SyncErrorCode,
  type WireErrorBody,
} from './wire.js';

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
  /** Interval of the polling subscription; 2 s by default. */
  pollIntervalMs?: number;
  /** Snapshot page size; the server's default when unset. */
  snapshotLimit?: number;
}

const STATUS_CODES: Record<number, SyncErrorCode> = {
  400: 'invalid_input',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  410: 'cursor_expired',
  413: 'payload_too_large',
  429: 'rate_limited',
  503: 'unavailable',
};

interface RequestOptions {
  method: 'GET' | 'POST';
  path: string;
  query?: Record<string, string | number | null | undefined>;
  body?: unknown;
  deviceId?: string;
}

/** Talks to one or3-sync server; one instance serves any number of workspaces. */
export class GatewayProvider implements SyncProvider {
  readonly mode = 'gateway' as const;
  readonly maxPayloadBytes: number;
  lastRateLimitRemaining: number | null = null;
  private readonly baseUrl: string;
  private readonly getToken: GetToken;
  private readonly fetchImpl: typeof fetch;
  private readonly pollIntervalMs: number;
  private readonly snapshotLimit: number | null;
  private readonly subscriptions = new Set<AbortController>();

  constructor(options: GatewayProviderOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.getToken = options.getToken;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.maxPayloadBytes = options.maxPayloadBytes ?? PROTOCOL_LIMITS.maxPayloadBytes;
    this.pollIntervalMs = options.pollIntervalMs ?? 2000;
    this.snapshotLimit = options.snapshotLimit ?? null;
  }

  push(scope: SyncScope, ops: PushOp[]): Promise<PushResponse> {
    return this.request<PushResponse>({
      method: 'POST',
      path: `${workspacePath(scope)}/push`,
      body: { ops },
      deviceId: scope.deviceId,
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

  snapshot(scope: SyncScope, pageToken: string | null): Promise<SnapshotPage> {
    return this.request<SnapshotPage>({
      method: 'GET',
      path: `${workspacePath(scope)}/snapshot`,
      query: { page_token: pageToken, limit: this.snapshotLimit, project_id: scope.projectId },
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
   * Delivers new changes by polling `changes` every `pollIntervalMs` (the
   * server's WebSocket subscribe is not used yet). Retryable failures back
   * off and go on; others (`cursor_expired`, `forbidden`, ...) end the
   * subscription through `onError`.
   */
  subscribe(
    scope: SyncScope,
    cursor: number,
    onChanges: (batch: ChangesBatch) => void | Promise<void>,
    onError: (error: SyncProviderError) => void,
  ): Unsubscribe {
    const controller = new AbortController();
    this.subscriptions.add(controller);
    const { signal } = controller;
    const poll = async () => {
      let position = cursor;
      let failures = 0;
      while (!signal.aborted) {
        try {
          const page = await this.pull(scope, position);
          if (signal.aborted) break;
          if (page.cursor > position) {
            await onChanges({ changes: page.changes, from: position, to: page.cursor });
            position = page.cursor;
          }
          failures = 0;
          if (!page.has_more) await sleep(this.pollIntervalMs, signal);
        } catch (error) {
          const failure = asProviderError(error);
          if (!failure.retryable && failure.code !== 'unauthorized') {
            if (!signal.aborted) onError(failure);
            break;
          }
          failures += 1;
          await sleep(backoffDelay(failures, DEFAULT_BACKOFF, Math.random, failure.retryAfterMs), signal);
        }
      }
      this.subscriptions.delete(controller);
    };
    void poll();
    return () => controller.abort();
  }

  dispose(): void {
    for (const controller of this.subscriptions) controller.abort();
    this.subscriptions.clear();
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
    try {
      response = await this.fetchImpl(url, {
        method: options.method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
    } catch (cause) {
      throw new SyncProviderError({ code: 'network_error', message: `request to ${url.pathname} failed`, status: 0, cause });
    }
    const remaining = numberHeader(response.headers.get('ratelimit-remaining'));
    if (remaining !== null) this.lastRateLimitRemaining = remaining;
    const text = await response.text();
    const body = parseJson(text);
    if (!response.ok) throw errorFromResponse(response, body, remaining);
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
  return new SyncProviderError({
    code: wire?.code ?? STATUS_CODES[response.status] ?? (response.status >= 500 ? 'unavailable' : 'invalid_input'),
    message: wire?.message ?? `HTTP ${response.status}`,
    status: response.status,
    retryAfterMs: retryAfterMs(response.headers.get('retry-after')),
    rateLimitRemaining: remaining,
    oldestRetainedVersion:
      wire?.oldest_retained_version ??
      ((body as { oldest_retained_version?: number } | undefined)?.oldest_retained_version ?? null),
    field: wire?.field ?? null,
  });
}

function asProviderError(error: unknown): SyncProviderError {
  if (isSyncProviderError(error)) return error;
  return new SyncProviderError({ code: 'internal', message: String(error), status: 0, cause: error });
}
