/**
 * The engine's options and the shapes around it: how an app attaches sync
 * (`AttachSyncOptions`), what `attachSync` found out before opening the
 * database, what one run did, and a workspace's database name.
 */
import type { BackoffOptions } from './backoff.js';
import type { LockManagerLike } from './leader.js';
import type { SyncProvider } from './provider.js';
import type { SyncedTable, SyncedTableOptions } from './schema.js';

/** How an app attaches sync to its own Dexie database (see `attachSync`). */
export interface AttachSyncOptions {
  workspaceId: string;
  /**
   * The signed-in user's id (the token's `sub`). The database then holds only this user's
   * synced data: another user's is wiped and held at open, their writes are never pushed with
   * this user's token, and a token of another user pushes nothing (client README, "Users,
   * sign-out and shared browsers"). Without it none of these protections apply.
   */
  userId?: string;
  provider: SyncProvider;
  /** Which of the app's tables sync, and their conventions (keys, deletes, filter, local-only fields, wire names). */
  syncedTables: readonly string[] | Record<string, SyncedTableOptions>;
  /** Sync only this project's threads and messages (and every workspace-wide table). */
  projectId?: string | null;
  /** Unit of `created_at`, `updated_at`, `deleted_at`; seconds by default (OR3 Chat's). */
  timeUnit?: 'seconds' | 'milliseconds';
  /** Above this many pending ops, never-sent ops on one record coalesce. Default 10 000. */
  outboxSoftLimit?: number;
  /**
   * Ops per push request. Default 100, and, while a backlog waits (a batch was taken full), the
   * server's `max_ops_per_push` when the provider knows it; a value set here is kept for every batch.
   */
  pushBatchSize?: number;
  /** Changes per pull request. Default 500. */
  pullLimit?: number;
  /** Rows per adoption batch: one transaction and one `sync.adopt:action` each. Default 500. */
  adoptBatchSize?: number;
  backoff?: Partial<BackoffOptions>;
  /**
   * Delay after a local write before the leader pushes, when no run is going.
   * Default 0: a write is pushed at once, and writes captured while a push is
   * in flight go together in the next one (one push in flight at a time).
   */
  pushDebounceMs?: number;
  /** How often the leader checks the outbox for other tabs' writes. Default 5 s. */
  outboxPollMs?: number;
  /**
   * After this long without a pull or a streamed change, the leader pulls even while
   * subscribed (checked every `outboxPollMs`); if that pull finds changes the
   * subscription did not deliver, the subscription is reopened. A browser cannot see a
   * WebSocket's pings, so this is how a silently dead connection is noticed. Default 60 s; 0: never.
   */
  safetyPullMs?: number;
  /**
   * Ops held for a configuration mismatch (`unknown_table`, `pk_mismatch`) are released and
   * pushed again at the engine's first run, on each reconnect of the realtime channel, and at
   * least this often while any is held. Default 60 s.
   */
  heldRetryMs?: number;
  /** Without a realtime channel up, the status stays `synced` this long after a pull. Default `safetyPullMs + outboxPollMs`. */
  statusFreshMs?: number;
  /** Below this `RateLimit-Remaining` the push loop waits `rateLimitDelayMs` between batches. Defaults 5 and 1 s. */
  rateLimitLowWater?: number;
  rateLimitDelayMs?: number;
  /** Web Locks for leader election; `navigator.locks` by default, null for none. */
  locks?: LockManagerLike | null;
  /** Tell other tabs about captured writes over BroadcastChannel. Default true. */
  broadcast?: boolean;
  /** Wall clock in ms. */
  now?: () => number;
  /** Randomness for backoff jitter. */
  random?: () => number;
}

/** What `attachSync` found out about the app's database before opening it. */
export interface AttachedDatabase {
  tables: Map<string, SyncedTable>;
  /** The app's highest declared Dexie version. */
  declaredVersion: number;
  /** Tables of an engine from before the `_or3sync_` prefix, to migrate once open. */
  legacyTables: Record<string, string>;
}

/** What one run did. */
export interface SyncRunResult {
  pushed: number;
  pulled: number;
  conflicts: number;
  /** Error code when the run failed. */
  error: string | null;
}

/** The database name of a workspace (the one `openWorkspace` opens). */
export function workspaceDatabaseName(workspaceId: string): string {
  return `or3-db-${workspaceId}`;
}
