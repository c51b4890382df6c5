/**
 * `useSyncStatus()`: the active workspace's sync as reactive state, fed by
 * the engine's events (this tab), live queries of its stats and latest run
 * (every tab: a follower sees what the leader does), the provider's
 * realtime state and the browser's online events.
 */
import { reactive, readonly, type DeepReadonly } from 'vue';
import { liveQuery } from 'dexie';
import { RUNS_TABLE, type SyncEngine, type SyncRunRow, type SyncStats } from '@or3/sync-client';
import { followEngine } from './follow-engine.js';
import { closedStatus, syncStateOf, type SyncStatus } from './sync-status.js';

/** Reactive, read-only sync status of the active workspace. */
export function useSyncStatus(): DeepReadonly<SyncStatus> {
  const status = reactive<SyncStatus>(closedStatus(browserOnline()));
  let hasRun = false;
  let lastSyncedRunAt: number | null = null;
  let current: SyncEngine | null = null;
  const update = () => {
    // The tab that leads knows its channel: its engine's state is the status. The others sum up what the tabs share.
    if (current && status.leader && status.online) {
      const { state, lastError } = current.status;
      status.state = state;
      status.lastError ??= lastError;
      return;
    }
    status.state = syncStateOf(status, hasRun, lastSyncedRunAt);
  };

  followEngine((engine) => {
    Object.assign(status, closedStatus(browserOnline()));
    hasRun = false;
    lastSyncedRunAt = null;
    current = engine;
    const stopNetwork = watchNetwork((online) => {
      status.online = online;
      update();
    });
    if (!engine) {
      update();
      return stopNetwork;
    }
    status.workspaceId = engine.workspaceId;
    const readEngine = () => {
      status.leader = engine.isLeader;
      status.paused = engine.isPaused;
      if (!status.leader || status.paused) status.realtime = null;
      update();
    };
    const applyStats = (stats: SyncStats) => {
      status.pending = stats.pending;
      status.held = stats.held;
      status.failed = stats.failed;
      status.held = stats.held;
      status.access = stats.access;
      status.cursor = stats.cursor;
      status.lastPushAt = stats.lastPushAt;
      status.lastPullAt = stats.lastPullAt;
      status.errors = stats.errors;
      readEngine();
    };
    readEngine();
    const stops = [
      stopNetwork,
      engine.on('sync.state:action', readEngine),
      engine.on('sync.status:action', update),
      engine.on('sync.stats:action', applyStats),
      engine.on('sync.error:action', (event) => {
        status.lastError = event;
        update();
      }),
      engine.provider.onRealtimeState?.((state) => {
        if (state.workspaceId !== engine.workspaceId) return;
        status.realtime = state.connected ? state.transport : null;
        update();
      }) ?? (() => {}),
    ];
    const stats = liveQuery(() => engine.stats()).subscribe({ next: applyStats, error: () => {} });
    const latestRun = liveQuery(() => latestRunOf(engine)).subscribe({
      next: (run) => {
        hasRun = run !== undefined;
        status.lastRunError = run?.error ?? null;
        if (run && !run.error) lastSyncedRunAt = run.finished_at;
        if (run && !run.error && status.failed + status.held === 0) status.lastError = null;
        update();
      },
      error: () => {},
    });
    return () => {
      for (const stop of stops) stop();
      stats.unsubscribe();
      latestRun.unsubscribe();
    };
  });
  return readonly(status);
}

function latestRunOf(engine: SyncEngine): Promise<SyncRunRow | undefined> {
  return engine.db.table<SyncRunRow, number>(RUNS_TABLE).orderBy('id').reverse().first();
}

function browserOnline(): boolean {
  return typeof navigator === 'undefined' ? true : navigator.onLine;
}

/** Follows the browser's online and offline events; returns a function that stops. */
function watchNetwork(onChange: (online: boolean) => void): () => void {
  if (typeof window === 'undefined') return () => {};
  const changed = () => onChange(browserOnline());
  window.addEventListener('online', changed);
  window.addEventListener('offline', changed);
  return () => {
    window.removeEventListener('online', changed);
    window.removeEventListener('offline', changed);
  };
}
