/**
 * Whose data a synced database holds and which workspace it syncs (PROTOCOL.md
 * section 6, "Users"): the `_or3sync_state` rows `owner` and `workspace`, the
 * workspace binding checked when sync is attached, and the user a provider's
 * token names.
 */
import type { Dexie } from 'dexie';
import type { SyncProvider } from '../provider.js';
import { STATE_TABLE } from '../schema.js';

/** `_or3sync_state` keys of ownership. */
export const OWNERSHIP_KEYS = {
  /** The user whose synced data the app's synced tables hold (absent: nobody yet, or a database from before ownership). */
  owner: 'owner',
  /** The workspace this database syncs; set on the first attach, never changed. */
  workspace: 'workspace',
} as const;

/** Attaching a database that syncs another workspace: one database per workspace (`or3-db-${workspaceId}`). */
export class WorkspaceMismatchError extends Error {
  constructor(
    /** The database's name. */
    readonly databaseName: string,
    /** The workspace the database syncs. */
    readonly boundWorkspaceId: string,
    /** The workspace the engine was asked to sync. */
    readonly workspaceId: string,
  ) {
    super(
      `or3-sync: database ${databaseName} syncs workspace ${boundWorkspaceId}, not workspace ${workspaceId}; ` +
        `open one database per workspace (or3-db-\${workspaceId})`,
    );
    this.name = 'WorkspaceMismatchError';
  }
}

/**
 * Binds `db` to `workspaceId` on its first attach, or throws `WorkspaceMismatchError`
 * when it is bound to another workspace (nothing else is read or written then).
 */
export function bindWorkspace(db: Dexie, workspaceId: string): Promise<void> {
  const state = db.table(STATE_TABLE);
  return db.transaction('rw', state, async () => {
    const bound = (await state.get(OWNERSHIP_KEYS.workspace))?.value;
    if (typeof bound === 'string' && bound !== workspaceId) throw new WorkspaceMismatchError(db.name, bound, workspaceId);
    if (bound !== workspaceId) await state.put({ key: OWNERSHIP_KEYS.workspace, value: workspaceId });
  });
}

/** The user whose synced data the database holds, or null when nobody owns it yet (inside or outside a transaction). */
export async function readOwner(db: Dexie): Promise<string | null> {
  const owner = (await db.table(STATE_TABLE).get(OWNERSHIP_KEYS.owner))?.value;
  return typeof owner === 'string' ? owner : null;
}

/**
 * The user `provider`'s token names when it differs from `userId`; null when they agree
 * or the provider cannot tell (no `tokenUserId`, a token without a subject, or no token
 * now: the request that needs one fails on its own).
 */
export async function tokenUserMismatch(provider: SyncProvider, userId: string): Promise<string | null> {
  const tokenUser = provider.tokenUserId ? await provider.tokenUserId().catch(() => null) : null;
  return tokenUser !== null && tokenUser !== userId ? tokenUser : null;
}

/** The provider's token belongs to another user than the engine's: nothing is pushed, the engine pauses (refused). */
export class UserMismatchError extends Error {
  readonly code = 'user_mismatch';
  constructor(
    readonly userId: string,
    readonly tokenUserId: string,
  ) {
    super(`or3-sync: the token is ${tokenUserId}'s, but this database is opened for ${userId}: nothing is pushed`);
    this.name = 'UserMismatchError';
  }
}

/**
 * Another user opened this database since this engine was attached (in another tab, which
 * wiped and held this user's data): this engine pushes and pulls nothing more, it pauses
 * refused with `user_mismatch`; the app signs its user in again to get their data back.
 */
export class OwnerChangedError extends Error {
  readonly code: 'user_mismatch';
  constructor(
    readonly userId: string,
    readonly ownerId: string,
  ) {
    const refusal = ownerChanged(userId, ownerId);
    super(refusal.message);
    this.code = refusal.code;
    this.name = 'OwnerChangedError';
  }
}

/** The refusal `OwnerChangedError` carries, for a tab told of the new owner with no run to throw it in. */
export function ownerChanged(userId: string, ownerId: string): { code: 'user_mismatch'; message: string } {
  return { code: 'user_mismatch', message: `or3-sync: ${ownerId} has opened this database since ${userId} did: sync stops for ${userId} in this tab` };
}
