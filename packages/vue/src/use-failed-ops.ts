/**
 * `useFailedOps()`: the writes the server rejected for good, live, and what
 * to do about each: retry it (the cause is fixed), discard it (local data stays
 * as it is), or restore the server's copy (which may delete a row the server never had).
 */
import type { ShallowRef } from 'vue';
import type { PendingOpRow, SyncEngine } from '@or3/sync-client';
import { useActiveWorkspace } from './sync-plugin.js';
import { useLiveQuery } from './use-live-query.js';

/** What `useFailedOps` returns. */
export interface FailedOps {
  /** Failed ops of the active workspace, in outbox order (every tab's); empty while none is open. */
  ops: Readonly<ShallowRef<PendingOpRow[]>>;
  /** Stops pushing a failed op; the local row stays as it is (local-only until written again). */
  discard(opId: string): Promise<void>;
  /** Drops a failed op and puts the server's copy of its record back (removing a row the server never had). */
  restoreServerCopy(opId: string): Promise<void>;
  /** Pushes a failed op again. */
  retry(opId: string): Promise<void>;
  /** Pushes every failed op again; resolves to how many. */
  retryAll(): Promise<number>;
}

export function useFailedOps(): FailedOps {
  const { engine } = useActiveWorkspace();
  const ops = useLiveQuery((e) => e.failedOps(), [], { initial: [] });
  const withEngine = <T>(action: (active: SyncEngine) => Promise<T>): Promise<T> =>
    engine.value ? action(engine.value) : Promise.reject(new Error('or3-sync: no workspace is open'));
  return {
    ops,
    discard: (opId) => withEngine((e) => e.discardFailedOp(opId)),
    restoreServerCopy: (opId) => withEngine((e) => e.restoreServerCopy(opId)),
    retry: (opId) => withEngine((e) => e.retryFailedOp(opId)),
    retryAll: () => withEngine((e) => e.retryFailedOps()),
  };
}
