/**
 * `observeProvider()`: wraps any `SyncProvider` to see what the engine does
 * not report itself: the newest server version any answer showed, how many
 * subscriptions are open, and the latest request failure. The engine is
 * given the wrapper and never knows.
 */
import {
  isSyncProviderError,
  type ChangesBatch,
  type ChangesPage,
  type PushOp,
  type PushResponse,
  type SnapshotItem,
  type SnapshotPage,
  type SyncProvider,
  type SyncProviderError,
  type SyncScope,
  type Unsubscribe,
} from '@or3/sync-client';

/** What the wrapper saw. */
export interface ProviderTelemetry {
  /** Highest `server_version` seen: push answers, pull cursors, snapshots, subscription batches. */
  readonly serverVersion: number | null;
  /** Subscriptions currently open (polling or realtime, whichever the provider does). */
  readonly openSubscriptions: number;
  /** The latest failed request, until a later one succeeds. */
  readonly lastFailure: { code: string; message: string; at: number } | null;
  /** Calls `listener` after each change; returns an unsubscribe. */
  onChange(listener: () => void): () => void;
}

/** Returns a provider that behaves like `inner` and the telemetry it records. */
export function observeProvider(inner: SyncProvider): { provider: SyncProvider; telemetry: ProviderTelemetry } {
  const provider = new ObservedProvider(inner);
  return { provider, telemetry: provider.telemetry };
}

class TelemetryState implements ProviderTelemetry {
  serverVersion: number | null = null;
  openSubscriptions = 0;
  lastFailure: { code: string; message: string; at: number } | null = null;
  private readonly listeners = new Set<() => void>();

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  sawVersion(version: number | null | undefined): void {
    if (typeof version === 'number' && (this.serverVersion === null || version > this.serverVersion)) {
      this.serverVersion = version;
    }
  }

  notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

class ObservedProvider implements SyncProvider {
  readonly telemetry = new TelemetryState();
  readonly mode: SyncProvider['mode'];
  readonly maxPayloadBytes: number;
  readonly getRecord?: (scope: SyncScope, tableName: string, pk: string) => Promise<SnapshotItem | null>;

  constructor(private readonly inner: SyncProvider) {
    this.mode = inner.mode;
    this.maxPayloadBytes = inner.maxPayloadBytes;
    if (inner.getRecord) {
      const getRecord = inner.getRecord.bind(inner);
      this.getRecord = (scope, tableName, pk) => this.track(getRecord(scope, tableName, pk), (item) => item?.server_version);
    }
  }

  get lastRateLimitRemaining(): number | null {
    return this.inner.lastRateLimitRemaining ?? null;
  }

  push(scope: SyncScope, ops: PushOp[]): Promise<PushResponse> {
    return this.track(this.inner.push(scope, ops), (answer) => answer.server_version);
  }

  pull(scope: SyncScope, cursor: number, limit?: number): Promise<ChangesPage> {
    return this.track(this.inner.pull(scope, cursor, limit), (page) => page.cursor);
  }

  snapshot(scope: SyncScope, pageToken: string | null): Promise<SnapshotPage> {
    return this.track(this.inner.snapshot(scope, pageToken), (page) => page.snapshot_version);
  }

  /** Passes every argument through (including any the interface gains later), watching batches and the end. */
  subscribe(...args: Parameters<SyncProvider['subscribe']>): Unsubscribe {
    const [scope, cursor, onChanges, onError, ...rest] = args;
    const state = this.telemetry;
    let open = true;
    const close = () => {
      if (!open) return;
      open = false;
      state.openSubscriptions -= 1;
      state.notify();
    };
    state.openSubscriptions += 1;
    state.notify();
    const unsubscribe = this.inner.subscribe(
      scope,
      cursor,
      (batch: ChangesBatch) => {
        state.sawVersion(batch.to);
        state.notify();
        return onChanges(batch);
      },
      (error: SyncProviderError) => {
        close();
        this.failed(error);
        onError(error);
      },
      ...rest,
    );
    return () => {
      close();
      unsubscribe();
    };
  }

  dispose(): void {
    this.inner.dispose();
  }

  private async track<T>(request: Promise<T>, versionOf: (answer: T) => number | null | undefined): Promise<T> {
    try {
      const answer = await request;
      this.telemetry.sawVersion(versionOf(answer));
      this.telemetry.lastFailure = null;
      this.telemetry.notify();
      return answer;
    } catch (error) {
      this.failed(error);
      throw error;
    }
  }

  private failed(error: unknown): void {
    const code = isSyncProviderError(error) ? error.code : 'internal';
    const message = error instanceof Error ? error.message : String(error);
    this.telemetry.lastFailure = { code, message, at: Date.now() };
    this.telemetry.notify();
  }
}
