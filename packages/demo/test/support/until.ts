/** Waiting for a condition by polling it, with a deadline: the tests never sleep a fixed time. */

/** `T` without its falsy members: what `until` resolves to. */
export type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/**
 * Resolves once `check` returns a truthy value (which it returns), polling
 * every `intervalMs`. On timeout it throws with `description` and the last
 * value or error `check` produced.
 */
export async function until<T>(
  check: () => Promise<T> | T,
  description: string,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = undefined;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as Truthy<T>;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for: ${description} (last: ${detail})`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
