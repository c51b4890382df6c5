/**
 * OR3's own `/api/sync/*` routes, called from the browser as OR3's gateway
 * provider calls them (same origin, session cookie), and the module's
 * realtime-token route.
 */

/** A route answered with an error status; `retryAfterMs` from `Retry-After`. */
export class Or3RouteError extends Error {
  override name = 'Or3RouteError';
  constructor(
    readonly path: string,
    readonly status: number,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(`[or3sync] ${path} failed (${status}): ${message}`);
  }
}

export interface Or3RoutesOptions {
  /** OR3's origin; same origin (`''`) by default. */
  baseUrl?: string;
  /** For tests: the fetch to use and headers to add (a browser sends its cookie). */
  fetch?: typeof fetch;
  headers?: Record<string, string>;
}

function retryAfterMs(value: string | null): number | undefined {
  const seconds = Number(value);
  return value && Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}

/** Calls one route; resolves with its JSON body (undefined when empty). */
export function or3Routes(options: Or3RoutesOptions) {
  const doFetch = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
  return async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const response = await doFetch(`${options.baseUrl ?? ''}${path}`, {
      method,
      credentials: 'include',
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    const text = await response.text();
    if (!response.ok) throw new Or3RouteError(path, response.status, text.slice(0, 200), retryAfterMs(response.headers.get('retry-after')));
    return (text ? JSON.parse(text) : undefined) as T;
  };
}
