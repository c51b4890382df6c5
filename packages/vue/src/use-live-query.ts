/**
 * `useLiveQuery()`: a `Ref` that follows a Dexie `liveQuery` over the
 * active workspace's database, re-run when the engine or `deps` change and
 * unsubscribed when the component unmounts.
 */
import { shallowRef, type ShallowRef, type WatchSource } from 'vue';
import { liveQuery } from 'dexie';
import type { SyncEngine } from '@or3/sync-client';
import { followEngine } from './follow-engine.js';

/** Options of `useLiveQuery`. */
export interface LiveQueryOptions<T> {
  /** The value while no engine is open or the first result is pending; undefined by default (and then the ref's type includes undefined). */
  initial?: T;
  /** Called when the query throws; the ref keeps its last value. */
  onError?: (error: unknown) => void;
}

/**
 * The live result of `querier(engine)`. Without an open engine, and right after
 * a switch, the ref holds `initial`, never the previous workspace's rows: so
 * with `initial` the ref is typed `T`, without it `T | undefined`.
 */
export function useLiveQuery<T>(
  querier: (engine: SyncEngine) => T | Promise<T>,
  deps: WatchSource[] | undefined,
  options: LiveQueryOptions<T> & { initial: T },
): Readonly<ShallowRef<T>>;
export function useLiveQuery<T>(
  querier: (engine: SyncEngine) => T | Promise<T>,
  deps?: WatchSource[],
  options?: LiveQueryOptions<T>,
): Readonly<ShallowRef<T | undefined>>;
export function useLiveQuery<T>(
  querier: (engine: SyncEngine) => T | Promise<T>,
  deps: WatchSource[] = [],
  options: LiveQueryOptions<T> = {},
): Readonly<ShallowRef<T | undefined>> {
  const result = shallowRef<T | undefined>(options.initial);
  followEngine((engine) => {
    result.value = options.initial;
    if (!engine) return () => {};
    const subscription = liveQuery(() => querier(engine)).subscribe({
      next: (value) => {
        result.value = value;
      },
      error: (error: unknown) => {
        if (options.onError) options.onError(error);
        else console.error('or3-sync: a live query failed', error);
      },
    });
    return () => subscription.unsubscribe();
  }, deps);
  return result;
}
