/** `useFailedOps()`: the writes the server rejected for good, live, and a way to drop them. */
import type { ShallowRef } from 'vue';
import type { PendingOpRow } from '@or3/sync-client';
import { useActiveWorkspace } from './sync-plugin.js';
import { useLiveQuery } from './use-live-query.js';

/** What `useFailedOps` returns. */
export interface FailedOps {
  /** Failed ops of the active workspace, in outbox order (every tab's); empty while none is open. */
  ops: Readonly<ShallowRef<PendingOpRow[]>>;
  /** Drops a failed op; the engine restores the record from the server's copy. */
  discard(opId: string): Promise<void>;
}

export function useFailedOps(): FailedOps {
  const { engine } = useActiveWorkspace();
  const ops = useLiveQuery((e) => e.failedOps(), [], { initial: [] });
  return {
    ops,
    discard(opId) {
      if (!engine.value) return Promise.reject(new Error('or3-sync: no workspace is open'));
      return engine.value.discardFailedOp(opId);
    },
  };
}
