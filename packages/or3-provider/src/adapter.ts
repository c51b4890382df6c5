/**
 * OR3's server-side `SyncGatewayAdapter` on the or3-sync gateway: each call
 * OR3's `/api/sync/*` routes make becomes one or more gateway requests as the
 * session's user, with the results mapped back to OR3's shapes.
 */
import { createError, type H3Event } from 'h3';
import { toOr3Change, toOr3SnapshotItem } from './change-mapping.js';
import { requestForOr3, rethrowForOr3 } from './error-mapping.js';
import { GatewayError, type GatewayClient } from './gateway-client.js';
import type { GatewayChangesPage, GatewayOp, GatewayPushResponse, GatewaySnapshotPage } from './gateway-wire.js';
import { StampMappingError, toGatewayDevice } from './hlc-mapping.js';
import type { PullRequest, PullResponse, PushBatch, PushOpResult, PushResult, SnapshotRequest, SnapshotResponse, SyncGatewayAdapter, SyncScope } from './or3-types.js';
import { toGatewayOp, toOr3Result } from './push-mapping.js';

/** The provider id OR3 selects with `OR3_SYNC_PROVIDER=or3sync`. */
export const OR3SYNC_PROVIDER_ID = 'or3sync';
/** OR3's page limit for pulls and snapshots. */
export const MAX_OR3_PAGE = 1000;
/** The gateway's default limit of ops per push request. */
export const MAX_GATEWAY_PUSH = 500;

export interface Or3SyncAdapterOptions {
  client: GatewayClient;
  /** The acting user's id (the token's `sub`), from OR3's session of the request. */
  userOf(event: H3Event): Promise<string>;
}

const workspacePath = (workspaceId: string) => `/v1/workspaces/${encodeURIComponent(workspaceId)}`;

/** The query string of a pull or snapshot: the page bounds, the project and the tables it is limited to. */
function scopeQuery(scope: SyncScope, tables: string[] | undefined, extra: Record<string, string | number | undefined>): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(extra)) if (value !== undefined) query.set(key, String(value));
  if (scope.projectId) query.set('project_id', scope.projectId);
  if (tables && tables.length > 0) query.set('tables', tables.join(','));
  return query.toString();
}

const clampPage = (n: number) => Math.max(1, Math.min(MAX_OR3_PAGE, Math.floor(n) || MAX_OR3_PAGE));

/**
 * The adapter. The gateway runs its own garbage collection (the log below
 * every active device's position and past its minimum retention, tombstone
 * payloads past their retention; their stamps stay), so `gcTombstones` and
 * `gcChangeLog` succeed without doing anything.
 */
export function createOr3SyncAdapter(options: Or3SyncAdapterOptions): SyncGatewayAdapter<H3Event> {
  const { client, userOf } = options;
  const call = async <T>(event: H3Event, method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<T> =>
    requestForOr3<T>(client, event, { method, path, body, userId: await userOf(event) });

  return {
    id: OR3SYNC_PROVIDER_ID,
    capabilities: { snapshotBootstrap: 'snapshot-v1', historyRetention: 'snapshot-v1' },

    async pull(event, input: PullRequest): Promise<PullResponse> {
      const query = scopeQuery(input.scope, input.tables, { cursor: input.cursor, limit: clampPage(input.limit) });
      let page: GatewayChangesPage;
      try {
        page = await client.request<GatewayChangesPage>({
          method: 'GET',
          path: `${workspacePath(input.scope.workspaceId)}/changes?${query}`,
          userId: await userOf(event),
        });
      } catch (error) {
        // An expired cursor, or one ahead of the log (a reset server): only a snapshot recovers.
        if (error instanceof GatewayError && error.code === 'cursor_expired') {
          return {
            changes: [],
            nextCursor: input.cursor,
            hasMore: false,
            oldestRetainedVersion: error.oldestRetainedVersion ?? 0,
            requiresSnapshot: true,
          };
        }
        return rethrowForOr3(event, error);
      }
      return {
        changes: page.changes.map(toOr3Change),
        nextCursor: page.cursor,
        hasMore: page.has_more,
        oldestRetainedVersion: page.oldest_retained_version,
        requiresSnapshot: false,
      };
    },

    async snapshot(event, input: SnapshotRequest): Promise<SnapshotResponse> {
      const query = scopeQuery(input.scope, input.tables, { limit: clampPage(input.pageSize), page_token: input.pageToken });
      const page = await call<GatewaySnapshotPage>(event, 'GET', `${workspacePath(input.scope.workspaceId)}/snapshot?${query}`);
      return {
        workspaceId: input.scope.workspaceId,
        // The page token binds the snapshot version, so every page of a chain shares it.
        snapshotId: String(page.snapshot_version),
        highWatermark: page.snapshot_version,
        items: page.items.map(toOr3SnapshotItem),
        nextPageToken: page.next_page_token,
      };
    },

    async push(event, input: PushBatch): Promise<PushResult> {
      const mapped = input.ops.map(toGatewayOp);
      const results: (PushOpResult | undefined)[] = mapped.map((m) => ('result' in m ? m.result : undefined));
      const toSend = mapped.flatMap((m, index) => ('op' in m ? [{ index, op: m.op }] : []));
      let serverVersion = 0;
      for (let start = 0; start < toSend.length; start += MAX_GATEWAY_PUSH) {
        const chunk = toSend.slice(start, start + MAX_GATEWAY_PUSH);
        const answer = await call<GatewayPushResponse>(event, 'POST', `${workspacePath(input.scope.workspaceId)}/push`, {
          ops: chunk.map((c): GatewayOp => c.op),
        });
        serverVersion = Math.max(serverVersion, answer.server_version);
        chunk.forEach(({ index }, i) => {
          const outcome = answer.results[i];
          const opId = input.ops[index]!.stamp.opId;
          results[index] = outcome
            ? toOr3Result(opId, outcome)
            : { opId, success: false, errorCode: 'SERVER_ERROR', error: 'the gateway answered fewer results than ops' };
        });
      }
      return { results: results as PushOpResult[], serverVersion };
    },

    async updateCursor(event, input) {
      let device: string;
      try {
        device = toGatewayDevice(input.deviceId);
      } catch (error) {
        if (!(error instanceof StampMappingError)) throw error;
        throw createError({ statusCode: 400, statusMessage: error.message, data: { code: 'VALIDATION_ERROR', field: 'deviceId' } });
      }
      await call(event, 'PUT', `${workspacePath(input.scope.workspaceId)}/devices/${device}/cursor`, { cursor: input.version });
    },

    async gcTombstones() {
      // The gateway runs its own GC.
    },

    async gcChangeLog() {
      // The gateway runs its own GC.
    },
  };
}
