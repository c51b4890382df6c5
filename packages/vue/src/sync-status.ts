/**
 * What `useSyncStatus()` shows. Its `state` is the client's one status
 * machine (`syncStateOf` of @or3/sync-client, in the client README), plus
 * `closed` while no workspace is open: in the tab that leads, the engine's own
 * `engine.status.state`; in the others, the same function over what every
 * tab shares (the outbox counts and the latest run of `_or3sync_runs`).
 */
import {
  syncStateOf as clientStateOf,
  type ErrorEvent,
  type RealtimeTransport,
  type SyncErrorCode,
  type SyncState as ClientSyncState,
  type SyncStats,
} from '@or3/sync-client';

/** The summary of a workspace's sync, for a status chip: the client's states, and `closed` while no workspace is open. */
export type SyncState = 'closed' | ClientSyncState;

/**
 * The active workspace's sync, as reactive state: the engine's `SyncStats`
 * (pending, held and failed ops of every tab, cursor, this tab's last push and pull
 * and error count, paused) and what the bindings add.
 */
export interface SyncStatus extends Omit<SyncStats, 'workspaceId'> {
  workspaceId: string | null;
  state: SyncState;
  /** The browser's network (`navigator.onLine`). */
  online: boolean;
  /** This tab runs the network loops (the others read the same database). */
  leader: boolean;
  /** The latest `sync.error:action` of this tab, or the reason of a failed or held op, until a run syncs with none left. */
  lastError: ErrorEvent | null;
  /** Error code of the latest run of any tab (`_or3sync_runs`); null when it succeeded. */
  lastRunError: string | null;
  /** The connected realtime transport of this tab's subscription, when the provider reports one. */
  realtime: RealtimeTransport | null;
}

/** Codes of a run the server refused, which retrying will not fix (docs/ERRORS.md: "pause and report"), and a token of another user. */
const REFUSED: ReadonlySet<string> = new Set<SyncErrorCode>(['forbidden', 'unknown_workspace', 'not_found', 'user_mismatch']);

/**
 * The state of a tab that does not lead (or before its engine reports): the
 * client's machine over `status`, whether any run has finished, and when the
 * latest run of any tab that synced finished (a pull every tab shares).
 */
export function syncStateOf(status: Omit<SyncStatus, 'state'>, hasRun: boolean, lastSyncedRunAt: number | null, now = Date.now(), freshMs = 65_000): SyncState {
  if (status.workspaceId === null) return 'closed';
  const refusedCode = status.lastError?.paused ? status.lastError.code : status.lastRunError;
  const refused = refusedCode !== null && REFUSED.has(refusedCode);
  const pulls = [status.lastPullAt, lastSyncedRunAt].filter((at): at is number => at !== null);
  return clientStateOf({
    online: status.online,
    pause: refused ? 'refused' : status.paused ? 'app' : null,
    access: status.access,
    pending: status.pending,
    held: status.held,
    failed: status.failed,
    lastRunError: hasRun ? status.lastRunError : undefined,
    channel: null,
    channelDownAt: null,
    lastPullAt: pulls.length > 0 ? Math.max(...pulls) : null,
    now,
    freshMs,
  });
}

/** The status with no workspace open. */
export function closedStatus(online: boolean): SyncStatus {
  return {
    workspaceId: null,
    state: 'closed',
    online,
    leader: false,
    paused: false,
    pending: 0,
    held: 0,
    failed: 0,
    access: 'read_write',
    cursor: null,
    lastPushAt: null,
    lastPullAt: null,
    errors: 0,
    lastError: null,
    lastRunError: null,
    realtime: null,
  };
}
