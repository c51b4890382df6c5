/**
 * Project scope (PROTOCOL.md section 1): threads and messages belong to
 * projects, every other table is workspace-wide. A thread is in project P when
 * its `project_id` is P; a message is in its thread's project. The log stores
 * the projects resolved at commit time; snapshots resolve them at read time.
 */
import type { Doc } from '../_generated/dataModel.js';
import type { QueryCtx } from '../_generated/server.js';
import type { TransactionBudget } from './budget.js';
import type { RecordPayload } from '@or3/sync-protocol';

/** The project-scoped tables, by the protocol's names. */
export const THREADS = 'threads';
export const MESSAGES = 'messages';

/** A string field of a payload, or null when absent or not a string. */
export function stringField(payload: RecordPayload | null, field: string): string | null {
  if (payload === null || !Object.hasOwn(payload, field)) return null;
  const value = payload[field];
  return typeof value === 'string' ? value : null;
}

/**
 * Looks up threads by pk within one function call, counting reads once, and
 * seeing the call's own writes when told about them.
 */
export class ThreadLookup {
  private readonly cache = new Map<string, Doc<'records'> | null>();

  constructor(
    private readonly ctx: QueryCtx,
    private readonly workspaceId: string,
    private readonly budget: TransactionBudget,
  ) {}

  /** The stored thread, or null. */
  async get(threadId: string): Promise<Doc<'records'> | null> {
    if (this.cache.has(threadId)) return this.cache.get(threadId) ?? null;
    const thread = await this.ctx.db
      .query('records')
      .withIndex('by_key', (q) => q.eq('workspace_id', this.workspaceId).eq('table_name', THREADS).eq('pk', threadId))
      .unique();
    this.budget.read(thread);
    this.cache.set(threadId, thread);
    return thread;
  }

  /** The project a thread is in now; null for no thread or no project. */
  async projectOf(threadId: string | null): Promise<string | null> {
    if (threadId === null) return null;
    return (await this.get(threadId))?.project_id ?? null;
  }

  /** Drops a thread this call wrote, so the next lookup reads the new version. */
  forget(threadId: string): void {
    this.cache.delete(threadId);
  }

  /** Whether a record is in project `projectId` (always, for workspace-wide tables). */
  async inProject(record: Doc<'records'>, projectId: string): Promise<boolean> {
    if (record.table_name === THREADS) return record.project_id === projectId;
    if (record.table_name === MESSAGES) return (await this.projectOf(record.thread_id)) === projectId;
    return true;
  }
}

/** Whether a log entry belongs to the scope of a client syncing `projectId` (all, when null). */
export function changeInScope(entry: Doc<'change_log'>, projectId: string | null): boolean {
  return projectId === null || !entry.scoped || entry.project_ids.includes(projectId);
}
