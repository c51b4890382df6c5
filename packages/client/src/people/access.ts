/**
 * What a refused push means (PROTOCOL.md section 6, "Access changes"). The
 * server answers 403 both to a viewer's push and to a push of someone who is
 * no longer a member, so the engine asks once more with a pull: a reader
 * keeps reading (`read_only`), a removed member stops (`revoked`). Pure: the
 * engine makes the requests.
 */
import type { EngineContext } from '../context.js';
import { outbox } from '../outbox/index.js';
import { classifyFailure } from '../run-end.js';

/** How the user's access to the workspace changed. */
export type AccessChange =
  /** The user can still read but no longer write (made a viewer): the refused ops fail with `read_only`, reads go on. */
  | 'read_only'
  /** The user can no longer read the workspace (removed, or the workspace is gone): sync stops, status `refused`. */
  | 'revoked';

/** The reason a push refused for the role is recorded with, on each op of the batch (in `failedOps()`). */
export const READ_ONLY_CODE = 'read_only';

/** The server refusing this user the workspace (403 `forbidden`, 404 `not_found`; `run-end.ts` says): retrying will not change it. */
export function isRefusal(error: unknown): boolean {
  return classifyFailure(error).kind === 'refused';
}

/** How the pull that followed a refused push ended. */
export type PullAfterRefusal = { ok: true } | { ok: false; error: unknown };

/**
 * A refused push, told apart by the pull that followed it: the pull succeeded, so the
 * user still reads (`read_only`); the pull was refused too (`revoked`); the pull failed
 * for a passing reason (the network): null, nothing is known yet and the run is retried
 * as any failed run.
 */
export function accessAfterRefusedPush(pull: PullAfterRefusal): AccessChange | null {
  if (pull.ok) return 'read_only';
  return isRefusal(pull.error) ? 'revoked' : null;
}

/** The user may still read but not write: every unsynced op of hers fails with `read_only` (in `failedOps()`), reported once. */
export async function failUnsyncedAsReadOnly(ctx: EngineContext, refusal: unknown): Promise<void> {
  const message = `the server refused this user's writes (${String((refusal as Error)?.message ?? refusal)}); reads go on`;
  const failed = await outbox.failQueued(ctx.db, { code: READ_ONLY_CODE, message });
  await ctx.refreshPendingEstimate();
  if (failed.length > 0) ctx.events.emit('sync.error:action', { phase: 'push', code: READ_ONLY_CODE, message });
}
