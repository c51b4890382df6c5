/**
 * Web Locks for the tabs of one simulated device (Node has no
 * `navigator.locks`): an exclusive lock per name, granted in request order,
 * held until the callback's promise settles, and given up by a request whose
 * signal aborts while it waits. One instance per device, as locks are per
 * browser profile.
 */
import type { LockManagerLike } from '@or3/sync-client';

export class InProcessLocks implements LockManagerLike {
  /** The promise each name's latest request resolves when it lets go. */
  private readonly tails = new Map<string, Promise<void>>();

  request(name: string, options: { mode: 'exclusive'; signal?: AbortSignal }, callback: () => Promise<void>): Promise<unknown> {
    const previous = this.tails.get(name) ?? Promise.resolve();
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    this.tails.set(name, previous.then(() => released));
    return new Promise((resolve, reject) => {
      let aborted = false;
      const onAbort = () => {
        aborted = true;
        reject(new Error('lock request aborted'));
      };
      if (options.signal?.aborted) onAbort();
      else options.signal?.addEventListener('abort', onAbort, { once: true });
      void previous.then(async () => {
        options.signal?.removeEventListener('abort', onAbort);
        if (aborted) return release();
        try {
          resolve(await callback());
        } catch (error) {
          reject(error);
        } finally {
          release();
        }
      });
    });
  }
}
