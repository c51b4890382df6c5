/**
 * The one status machine of a workspace's sync (client README, "Status"):
 * `syncStateOf` sums up what is known into one `SyncState`. The engine's
 * `status` getter, `useSyncStatus()` (packages/vue) and the demo's dev overlay
 * all call it, so they never disagree.
 *
 * First match wins:
 *   offline    the browser has no network, the latest run could not reach the
 *              server, or the realtime channel dropped and nothing reached the server since
 *   refused    the server refused the workspace (403/404): the loops are paused
 *   paused     the app paused the loops
 *   read_only  the server refused this user's writes while reads go on (a viewer now): refused
 *              writes are in `failedOps()`, pulls and realtime go on
 *   attention  ops were rejected for good (`failedOps()`): retry, discard or restore them
 *   held       ops wait for the server's configuration (`unknown_table`, `pk_mismatch`): retried by themselves
 *   error      the latest run failed and is being retried
 *   connecting no run has reached the server yet
 *   syncing    writes wait to be pushed
 *   stale      no realtime channel is up and the last pull is older than `freshMs`
 *   synced     none of the above: nothing waits, the latest run reached the server,
 *              and the channel is up (or the last pull is recent)
 */

/** The summary of a workspace's sync. */
export type SyncState =
  | 'offline'
  | 'refused'
  | 'paused'
  | 'read_only'
  | 'attention'
  | 'held'
  | 'error'
  | 'connecting'
  | 'syncing'
  | 'stale'
  | 'synced';

/** The realtime channel: `up` while connected, `down` after it dropped (until it reconnects), null when none is open. */
export type ChannelState = 'up' | 'down' | null;

/** What the status is made of. */
export interface SyncStateInput {
  /** The browser's network (`navigator.onLine`). */
  online: boolean;
  /** Why the loops are paused: the app, or the server's refusal; null while running. */
  pause: 'app' | 'refused' | null;
  /** What the server lets the user do (`engine.access`); `read_write` when not known. */
  access?: 'read_write' | 'read_only' | 'revoked';
  pending: number;
  held: number;
  failed: number;
  /** The latest run's error code (null: it synced); undefined before any run. */
  lastRunError: string | null | undefined;
  channel: ChannelState;
  /** When the channel dropped (ms), while `down`. */
  channelDownAt: number | null;
  lastPullAt: number | null;
  now: number;
  /** How recent a pull keeps the status `synced` without a channel. */
  freshMs: number;
}

/** Codes of a run that could not reach the server. */
const UNREACHABLE = new Set(['network_error']);

/** The state `input` sums up (see the file comment). */
export function syncStateOf(input: SyncStateInput): SyncState {
  const { lastRunError, lastPullAt } = input;
  const dropped = input.channel === 'down' && (lastPullAt ?? 0) <= (input.channelDownAt ?? 0);
  if (!input.online || (lastRunError != null && UNREACHABLE.has(lastRunError)) || dropped) return 'offline';
  if (input.pause === 'refused') return 'refused';
  if (input.pause === 'app') return 'paused';
  if (input.access === 'read_only') return 'read_only';
  if (input.failed > 0) return 'attention';
  if (input.held > 0) return 'held';
  if (lastRunError != null && lastRunError !== 'paused') return 'error';
  if (lastRunError === undefined || lastPullAt === null) return 'connecting';
  if (input.pending > 0) return 'syncing';
  if (input.channel !== 'up' && input.now - lastPullAt > input.freshMs) return 'stale';
  return 'synced';
}
