/** Retry delays: exponential backoff with jitter (PROTOCOL.md section 6). */

/** Backoff settings; the protocol's defaults are 250 ms doubling to 60 s. */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** `sync.error:action` fires once this many tries in a row failed. */
  errorAfter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 250, maxMs: 60_000, errorAfter: 8 };

/**
 * Delay before retry number `attempt` (1-based): base·2^(attempt-1) capped at
 * max, with "equal jitter" (half fixed, half random), and never less than the
 * server's `Retry-After`.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number,
  retryAfterMs: number | null = null,
): number {
  const exp = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  const jittered = exp / 2 + random() * (exp / 2);
  return Math.max(Math.round(jittered), retryAfterMs ?? 0);
}

/** Resolves after `ms`, or early when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
