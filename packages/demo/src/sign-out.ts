/**
 * Signing out of this browser: every workspace database this browser holds
 * for the user is signed out through its engine (what is pending is pushed
 * first, then the database is deleted), so the next person to sign in here
 * finds nothing of theirs. Writes that cannot reach the server refuse it,
 * unless the user says to keep them for their next sign-in or to drop them.
 */
import { Dexie } from 'dexie';
import { UnsyncedWritesError, workspaceDatabaseName, type UnsyncedWrites } from '@or3/sync-client';
import { forgetKnownWorkspaces, knownWorkspaces } from './known-workspaces.js';
import { chatOpener } from './open-chat.js';

/** How long each workspace may try to push before its sign-out counts what is left. */
const PUSH_TIMEOUT_MS = 3000;

/**
 * Signs `userId` (still the signed-in user) out of each of their workspaces on this
 * browser; returns how many of their writes did not reach the server and refused it
 * (0: signed out everywhere). `unsynced` says what to do with such writes.
 */
export async function signOutOfBrowser(userId: string, unsynced: UnsyncedWrites = 'refuse'): Promise<number> {
  let refused = 0;
  let held = false;
  for (const { workspace_id: workspaceId } of knownWorkspaces(userId)) {
    if (!(await Dexie.exists(workspaceDatabaseName(workspaceId)))) continue;
    const engine = await chatOpener.open(workspaceId);
    try {
      const left = await engine.signOut({ unsynced, timeoutMs: PUSH_TIMEOUT_MS });
      held ||= left === 'held_for_user';
    } catch (error) {
      if (!(error instanceof UnsyncedWritesError)) throw error;
      refused += error.count;
      await engine.close();
    } finally {
      engine.provider.dispose();
    }
  }
  // Kept writes come back when the user opens their workspaces again, offline too: keep the list for that.
  if (refused === 0 && !held) forgetKnownWorkspaces(userId);
  return refused;
}
