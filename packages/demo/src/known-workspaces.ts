/**
 * The workspaces a user has opened on this device, with name and role, kept
 * in `localStorage`: the server's list needs the network, a reload offline
 * does not have it.
 */
import type { WorkspaceInfo } from './workspace-api.js';

const key = (userId: string) => `or3-demo:workspaces:${userId}`;

/** What this device knows of `userId`'s workspaces. */
export function knownWorkspaces(userId: string): WorkspaceInfo[] {
  try {
    const parsed = JSON.parse(localStorage.getItem(key(userId)) ?? '[]') as unknown;
    return Array.isArray(parsed) ? (parsed as WorkspaceInfo[]) : [];
  } catch {
    return [];
  }
}

/** Records workspaces (newer facts replace older ones by id). */
export function rememberWorkspaces(userId: string, workspaces: WorkspaceInfo[]): void {
  const byId = new Map(knownWorkspaces(userId).map((w) => [w.workspace_id, w]));
  for (const w of workspaces) byId.set(w.workspace_id, w);
  localStorage.setItem(key(userId), JSON.stringify([...byId.values()]));
}

/** Forgets what this device knew of `userId`'s workspaces (they signed out and left nothing behind). */
export function forgetKnownWorkspaces(userId: string): void {
  localStorage.removeItem(key(userId));
}
