/**
 * What signing a user out (or forgetting a workspace the user lost) leaves of
 * the local database (PROTOCOL.md section 6, "Users"): nothing, when nobody
 * else's writes wait in it (`Dexie.delete()`); otherwise only the engine's
 * rows and the held ops of their authors. The user's own unsynced writes
 * refuse it (`UnsyncedWritesError`, with the count), unless the app says to
 * hold them for the user's next sign-in or to discard them.
 */
import type { Dexie } from 'dexie';
import { runRemoteTransaction } from '../apply.js';
import type { CaptureRuntime } from '../capture/index.js';
import { outbox } from '../outbox/index.js';
import { STATE_TABLE } from '../schema.js';
import { OWNERSHIP_KEYS } from './ownership.js';
import { WIPE_EXTRA_TABLES, wipeSyncedData } from './wipe.js';

/** What happens to the user's writes that did not reach the server. */
export type UnsyncedWrites =
  /** Refuse: throw `UnsyncedWritesError` and change nothing (the default). */
  | 'refuse'
  /** Keep them, held, for the user's next sign-in on this browser; the synced data goes. */
  | 'hold'
  /** Drop them with the rest. */
  | 'discard';

/** Options of `signOut()` and `forgetWorkspace()`. */
export interface SignOutOptions {
  /** The user's unsynced writes: `refuse` (default), `hold` or `discard`. */
  unsynced?: UnsyncedWrites;
  /** How long sign-out tries to push them first; default 5000 ms (`forgetWorkspace` does not try: the server refuses). */
  timeoutMs?: number;
}

/** Sign-out (or forget) refused: the user has writes the server does not have yet. */
export class UnsyncedWritesError extends Error {
  constructor(
    /** The user's unsynced ops (pending and failed). */
    readonly count: number,
  ) {
    super(
      `or3-sync: ${count} write${count === 1 ? '' : 's'} of this user did not reach the server; ` +
        `pass { unsynced: 'hold' } to keep them for the next sign-in or { unsynced: 'discard' } to drop them`,
    );
    this.name = 'UnsyncedWritesError';
  }
}

/** What removing a user's data left: the database is gone, or it keeps only other users' held ops. */
export type RemovedUserData = 'deleted' | 'held_for_others' | 'held_for_user';

/**
 * Removes `userId`'s synced data from `db` (see the file comment). Every op that does not wait
 * for another author is the user's (the database's owner wrote it); `choice` says what becomes
 * of those. Capture ignores the transaction. The caller has stopped the loops and closes the
 * engine afterwards.
 */
export async function removeUserData(db: Dexie, runtime: CaptureRuntime, userId: string | null, choice: UnsyncedWrites): Promise<RemovedUserData> {
  const outcome = await runRemoteTransaction(db, runtime, WIPE_EXTRA_TABLES, async (): Promise<RemovedUserData | null> => {
    const unsynced = await outbox.countActive(db);
    if (unsynced > 0 && choice === 'refuse') throw new UnsyncedWritesError(unsynced);
    const keep = unsynced > 0 && choice === 'hold';
    if (keep) {
      if (userId === null) throw new Error("or3-sync: keeping unsynced writes for their author (unsynced: 'hold') needs the engine's userId");
      await outbox.holdActive(db, userId);
    } else {
      await outbox.dropActive(db);
    }
    if (!keep && (await outbox.countHeld(db)) === 0) return null;
    await wipeSyncedData(db, runtime.tables);
    await db.table(STATE_TABLE).delete(OWNERSHIP_KEYS.owner);
    return keep ? 'held_for_user' : 'held_for_others';
  });
  if (outcome !== null) return outcome;
  await db.delete();
  return 'deleted';
}
