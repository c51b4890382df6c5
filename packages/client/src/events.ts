/**
 * The engine's typed event bus, with the protocol's event names
 * (PROTOCOL.md section 6).
 */
import type { Stamp, SyncErrorCode } from '@or3/sync-protocol';
import type { EngineStatus } from './engine-status.js';

/** `sync.stats:action`: the engine's state after each run. */
export interface SyncStats {
  workspaceId: string;
  pending: number;
  failed: number;
  cursor: number | null;
  lastPushAt: number | null;
  lastPullAt: number | null;
  errors: number;
  paused: boolean;
  /** This user's ops held for the server's configuration (`engine.heldOps()` lists every held op, other users' too). */
  held: number;
  /** What the server lets this user do in the workspace, as far as the engine has seen (`engine.access`). */
  access: WorkspaceAccess;
}

/**
 * What the server lets the user do in the workspace: `read_write` until it says otherwise;
 * `read_only` after a refused push whose pull succeeded (a viewer now); `revoked` after a
 * refused pull or subscription (no longer a member, or no such workspace).
 */
export type WorkspaceAccess = 'read_write' | 'read_only' | 'revoked';

/** `sync.access:action:revoked`: the server refused the user the workspace; sync stopped (see `forgetWorkspace()`). */
export interface AccessRevokedEvent {
  workspaceId: string;
  code: SyncErrorCode;
  message: string;
}

/** `sync.queue:action:full`: the outbox went above its soft limit. */
export interface QueueFullEvent {
  pending: number;
  limit: number;
}

/** What the engine was doing when something failed: a run's step, or the subscription. */
export type SyncPhase = 'push' | 'pull' | 'snapshot' | 'subscribe';

/** `sync.retry:action`: a request failed and will be retried. */
export interface RetryEvent {
  phase: SyncPhase;
  attempt: number;
  delayMs: number;
  code: SyncErrorCode;
}

/** `sync.error:action`: something the app should know about. */
export interface ErrorEvent {
  phase: SyncPhase;
  code: SyncErrorCode;
  message: string;
  /** Set for a rejected op, which is kept as failed (or held, see `held`) and skipped. */
  opId?: string;
  tableName?: string;
  pk?: string;
  /** Consecutive failed tries so far. */
  attempts?: number;
  /** True when the loops paused (403, 404) until `resume()`. */
  paused?: boolean;
  /** True for an op held for a configuration mismatch (`unknown_table`, `pk_mismatch`): retried by itself once the server is fixed. */
  held?: boolean;
}

/** `sync.conflict:action:detected`: a local write lost, or a remote change was refused. */
export interface ConflictEvent {
  tableName: string;
  pk: string;
  local: Stamp;
  remote: Stamp;
  winner: 'local' | 'remote';
}

/** `sync.rescan:action`: a rescan started or finished. */
export interface RescanEvent {
  phase: 'started' | 'finished';
  reason: RescanReason;
  snapshotVersion?: number;
  items?: number;
}

/** `sync.state:action`: this tab started or stopped leading, or the loops paused or resumed. */
export interface EngineStateEvent {
  /** True while this tab runs the network loops (`engine.isLeader`). */
  leader: boolean;
  /** True after a 403/404 or `pause()`, until `resume()` (`engine.isPaused`). */
  paused: boolean;
  /** Why the loops are paused (`engine.pauseReason`); null while not paused. */
  pauseReason: PauseReason | null;
}

/** Why the loops are paused. */
export type PauseReason =
  /** The app called `pause()`. */
  | { kind: 'app' }
  /** The server refused this device the workspace (403 `forbidden`, 404 `not_found`...), during `phase`. */
  | { kind: 'refused'; phase: SyncPhase; code: SyncErrorCode; message: string };

/** Why the engine rescans its scope (`adoption`: local rows that were never synced, e.g. after an app upgrade). */
export type RescanReason = 'fresh_device' | 'cursor_expired' | 'scope_change' | 'on_demand' | 'adoption' | 'new_tables';

/**
 * `sync.adopt:action`: progress of adopting rows that were in the database before sync
 * (emitted after each committed batch, so `scanned` is what survives a reload).
 */
export interface AdoptEvent {
  phase: 'started' | 'progress' | 'finished';
  /** Table being scanned (the last one when finished). */
  tableName: string | null;
  /** Rows scanned so far, over every synced table, including batches of an earlier, interrupted adoption. */
  scanned: number;
  /** Rows of those queued for push (the rest already matched the server, lost LWW, or are filtered out). */
  queued: number;
  /** Rows in the synced tables when the adoption (re)started. */
  total: number;
}

/** Every event name with its payload type. */
export interface SyncEventMap {
  'sync.stats:action': SyncStats;
  'sync.queue:action:full': QueueFullEvent;
  'sync.retry:action': RetryEvent;
  'sync.error:action': ErrorEvent;
  'sync.conflict:action:detected': ConflictEvent;
  'sync.rescan:action': RescanEvent;
  'sync.adopt:action': AdoptEvent;
  'sync.state:action': EngineStateEvent;
  'sync.access:action:revoked': AccessRevokedEvent;
  /** The engine's status changed (`engine.status`). */
  'sync.status:action': EngineStatus;
}

export type SyncEventName = keyof SyncEventMap;
export type SyncEventListener<K extends SyncEventName> = (payload: SyncEventMap[K]) => void;

/** A small synchronous typed emitter; a throwing listener never breaks the engine. */
export class SyncEventBus {
  private readonly listeners = new Map<SyncEventName, Set<(payload: never) => void>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends SyncEventName>(name: K, listener: SyncEventListener<K>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => this.off(name, listener);
  }

  off<K extends SyncEventName>(name: K, listener: SyncEventListener<K>): void {
    this.listeners.get(name)?.delete(listener as (payload: never) => void);
  }

  /** Whether anyone listens to `name` (an event whose payload costs reads is built only then). */
  hasListeners(name: SyncEventName): boolean {
    return (this.listeners.get(name)?.size ?? 0) > 0;
  }

  emit<K extends SyncEventName>(name: K, payload: SyncEventMap[K]): void {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as SyncEventListener<K>)(payload);
      } catch (error) {
        console.error(`or3-sync: listener of ${name} threw`, error);
      }
    }
  }

  clear(): void {
    this.listeners.clear();
  }
}
