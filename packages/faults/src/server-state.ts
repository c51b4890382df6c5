/**
 * The server's side of the checks, read straight from the gateway (not
 * through the proxy): the whole snapshot, paged, and the whole change log
 * from cursor 0. Neither request names a device, so neither holds back GC.
 */
import type { Change, ChangesPage, SnapshotItem, SnapshotPage } from '@or3/sync-client';
import type { GatewayProcess } from './gateway-process.js';

export interface ServerState {
  snapshotVersion: number;
  items: SnapshotItem[];
  log: Change[];
  oldestRetainedVersion: number;
}

/** Every snapshot item of the workspace, or of one project's scope (its threads and messages, and every other table). */
export async function readSnapshot(
  gateway: GatewayProcess,
  token: string,
  workspaceId: string,
  projectId: string | null = null,
): Promise<{ snapshotVersion: number; items: SnapshotItem[] }> {
  const items: SnapshotItem[] = [];
  let snapshotVersion = 0;
  let pageToken: string | null = null;
  for (;;) {
    const query = new URLSearchParams({ limit: '500' });
    if (pageToken) query.set('page_token', pageToken);
    if (projectId !== null) query.set('project_id', projectId);
    const { status, body } = await gateway.api<SnapshotPage>(token, 'GET', `/v1/workspaces/${workspaceId}/snapshot?${query}`);
    if (status !== 200) throw new Error(`snapshot: HTTP ${status} ${JSON.stringify(body)}`);
    if (pageToken === null) snapshotVersion = body.snapshot_version;
    items.push(...body.items);
    pageToken = body.next_page_token;
    if (!pageToken) break;
  }
  return { snapshotVersion, items };
}

/** Pages through the snapshot, then pulls the log from 0. */
export async function readServerState(gateway: GatewayProcess, token: string, workspaceId: string): Promise<ServerState> {
  const { snapshotVersion, items } = await readSnapshot(gateway, token, workspaceId);
  const log: Change[] = [];
  let cursor = 0;
  let oldestRetainedVersion = 1;
  for (;;) {
    const { status, body } = await gateway.api<ChangesPage>(
      token,
      'GET',
      `/v1/workspaces/${workspaceId}/changes?cursor=${cursor}&limit=1000`,
    );
    const expired = (body as unknown as { error?: { code?: string; oldest_retained_version?: number } }).error;
    if (status === 410 && expired?.code === 'cursor_expired' && typeof expired.oldest_retained_version === 'number' && cursor === 0) {
      // The log was purged: read what is retained.
      cursor = expired.oldest_retained_version - 1;
      oldestRetainedVersion = expired.oldest_retained_version;
      continue;
    }
    if (status !== 200) throw new Error(`changes: HTTP ${status} ${JSON.stringify(body)}`);
    log.push(...body.changes);
    oldestRetainedVersion = body.oldest_retained_version ?? oldestRetainedVersion;
    if (!body.has_more || body.cursor <= cursor) break;
    cursor = body.cursor;
  }
  return { snapshotVersion, items, log, oldestRetainedVersion };
}
