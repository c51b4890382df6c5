/**
 * The app's location, in the URL hash: `#/w/<workspace>` or
 * `#/w/<workspace>/t/<thread>`, so a reload (or a second tab) opens the same
 * view. The server serves `index.html` for every non-API path either way.
 */

export interface Route {
  workspaceId: string | null;
  threadId: string | null;
}

/** Reads the route from `location.hash`. */
export function currentRoute(): Route {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const workspaceId = parts[0] === 'w' && parts[1] ? parts[1] : null;
  const threadId = workspaceId && parts[2] === 't' && parts[3] ? parts[3] : null;
  return { workspaceId, threadId };
}

/** The hash of a route. */
export function routeHash(route: Route): string {
  if (!route.workspaceId) return '#/';
  const ws = `#/w/${encodeURIComponent(route.workspaceId)}`;
  return route.threadId ? `${ws}/t/${encodeURIComponent(route.threadId)}` : ws;
}

/** Goes to `route`; `replace` keeps the history entry (for automatic choices). */
export function navigate(route: Route, replace = false): void {
  const hash = routeHash(route);
  if (location.hash === hash) return;
  if (replace) {
    history.replaceState(null, '', hash);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    location.hash = hash;
  }
}
