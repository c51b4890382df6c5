/**
 * What `useSyncStatus()` shows, and the one rule that sums it up
 * (`syncStateOf`): a workspace is `synced` only when its latest run, in any
 * tab of this device, reached the server and was not refused.
 */
import type { ErrorEvent, RealtimeTransport, SyncErrorCode, SyncStats } from '@or3/sync-client';

/** The summary of a workspace's sync, for a status chip. */
export type SyncState =
  /** No workspace is open. */
  | 'closed'
  /** The browser has no network. */
  | 'offline'
  /** The app paused the loops (`engine.pause()`, e.g. a "work offline" switch). */
  | 'paused'
  /** The server refused the workspace (403 `forbidden`, 404 `unknown_workspace` or `not_found`): not a member, or no such workspace. */
  | 'refused'
  /** The latest run failed and is being retried. */
  | 'error'
  /** No run has finished yet. */
  | 'connecting'
  /** The latest run pushed and pulled without error. */
  | 'synced';

/**
 * The active workspace's sync, as reactive state: the engine's `SyncStats`
 * (pending and failed ops of every tab, cursor, this tab's last push and pull
 * and error count, paused) and what the bindings add.
 */
export interface SyncStatus extends Omit<SyncStats, 'workspaceId'> {
  workspaceId: string | null;
  state: SyncState;
  /** The browser's network (`navigator.onLine`). */
  online: boolean;
  /** This tab runs the network loops (the others read the same database). */
  leader: boolean;
  /** The latest `sync.error:action` of this tab, until a run succeeds. */
  lastError: ErrorEvent | null;
  /** Error code of the latest run of any tab (`_or3sync_runs`); null when it succeeded. */
  lastRunError: string | null;
  /** The connected realtime transport of this tab's subscription, when the provider reports one. */
  realtime: RealtimeTransport | null;
}

/** Codes of a run the server refused, which retrying will not fix (docs/ERRORS.md: "pause and report"). */
const REFUSED: ReadonlySet<string> = new Set<SyncErrorCode>(['forbidden', 'unknown_workspace', 'not_found']);

/** The summary state of `status` (without its own `state`), plus whether any run has finished. */
export function syncStateOf(status: Omit<SyncStatus, 'state'>, hasRun: boolean): SyncState {
  if (status.workspaceId === null) return 'closed';
  if (!status.online) return 'offline';
  const refusedCode = status.lastError?.paused ? status.lastError.code : status.lastRunError;
  if (refusedCode && REFUSED.has(refusedCode)) return 'refused';
  if (status.paused) return 'paused';
  if (status.lastRunError && status.lastRunError !== 'paused') return 'error';
  if (!hasRun || status.cursor === null) return 'connecting';
  return 'synced';
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
    failed: 0,
    cursor: null,
    lastPushAt: null,
    lastPullAt: null,
    errors: 0,
    lastError: null,
    lastRunError: null,
    realtime: null,
  };
}
