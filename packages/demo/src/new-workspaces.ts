/**
 * Workspaces this tab just created, so the chat can give each a first
 * thread to type in. Kept in memory: only the tab that created a workspace
 * (and only once) seeds it; members who join find the owner's threads.
 */

const created = new Set<string>();

/** Remembers that this tab created `workspaceId`. */
export function markCreated(workspaceId: string): void {
  created.add(workspaceId);
}

/** True once for a workspace this tab created. */
export function takeCreated(workspaceId: string): boolean {
  return created.delete(workspaceId);
}
