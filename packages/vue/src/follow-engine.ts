/**
 * `followEngine()`: runs a setup for the active engine and its cleanup when
 * the engine changes or the component's scope ends. The watcher is
 * synchronous, so a cleanup runs before `ActiveWorkspace` closes the engine.
 */
import { onScopeDispose, watch, type WatchSource } from 'vue';
import type { SyncEngine } from '@or3/sync-client';
import { useActiveWorkspace } from './sync-plugin.js';

/** Calls `setup(engine)` for each engine (and on each change of `deps`); the function it returns cleans up. */
export function followEngine(setup: (engine: SyncEngine | null) => () => void, deps: WatchSource[] = []): void {
  const { engine } = useActiveWorkspace();
  let cleanup: (() => void) | null = null;
  const stop = watch(
    [engine, ...deps],
    () => {
      cleanup?.();
      cleanup = setup(engine.value);
    },
    { immediate: true, flush: 'sync' },
  );
  onScopeDispose(() => {
    stop();
    cleanup?.();
    cleanup = null;
  });
}
