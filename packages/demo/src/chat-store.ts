/**
 * The chat's data: threads and messages in the workspace's Dexie database.
 * The UI reads only through these queries, run live by `useLiveQuery`, and
 * writes with plain Dexie calls, which the engine captures into its outbox;
 * it never calls the server for chat data.
 */
import { Dexie, type Table } from 'dexie';
import { OUTBOX_TABLE, type PendingOpRow, type SyncEngine } from '@or3/sync-client';
import { compareMessages } from './message-order.js';

/** Stores of the chat tables (the engine adds its own). */
export const CHAT_SCHEMA = {
  threads: 'id',
  messages: 'id, thread_id',
} as const;

/** Fields the engine keeps on every synced row. */
interface SyncedRow {
  clock: number;
  hlc: string;
  deleted: boolean;
  deleted_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface ThreadRow extends SyncedRow {
  id: string;
  title: string;
  project_id: null;
  created_by: string;
}

export interface MessageRow extends SyncedRow {
  id: string;
  thread_id: string;
  index: number;
  order_key: string;
  author: string;
  text: string;
  edited_at: number | null;
}

/** Where a message's latest local write stands. */
export type MessageSyncState = 'pending' | 'synced' | 'failed';

/** An op of the message the server rejected for good. */
export interface FailedWrite {
  opId: string;
  error: string;
}

/** A message as the UI shows it. */
export interface MessageView extends MessageRow {
  syncState: MessageSyncState;
  failedWrites: FailedWrite[];
}

/** What the app writes; the engine stamps the sync fields. */
type NewRow<T extends SyncedRow> = Omit<T, keyof SyncedRow | 'order_key'>;

/** Threads and messages of one open workspace. */
export class ChatStore {
  private readonly threadsTable: Table<ThreadRow, string>;
  private readonly messagesTable: Table<MessageRow, string>;
  private readonly outbox: Table<PendingOpRow, number>;

  constructor(private readonly engine: SyncEngine) {
    this.threadsTable = engine.db.table('threads');
    this.messagesTable = engine.db.table('messages');
    this.outbox = engine.db.table(OUTBOX_TABLE);
  }

  /** Threads, oldest first. */
  async threads(): Promise<ThreadRow[]> {
    const rows = await this.threadsTable.toArray();
    return rows.filter((t) => !t.deleted).sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1));
  }

  /** Messages of a thread, in display order, each with its sync state. */
  async messages(threadId: string): Promise<MessageView[]> {
    const [rows, ops] = await Promise.all([
      this.messagesTable.where('thread_id').equals(threadId).toArray(),
      this.outbox
        .where('[table_name+pk]')
        .between(['messages', Dexie.minKey], ['messages', Dexie.maxKey])
        .toArray(),
    ]);
    const opsByMessage = new Map<string, PendingOpRow[]>();
    for (const op of ops) {
      const list = opsByMessage.get(op.pk) ?? [];
      list.push(op);
      opsByMessage.set(op.pk, list);
    }
    return rows
      .filter((m) => !m.deleted)
      .sort(compareMessages)
      .map((m) => toView(m, opsByMessage.get(m.id) ?? []));
  }

  async createThread(title: string, createdBy: string): Promise<string> {
    const thread: NewRow<ThreadRow> = { id: crypto.randomUUID(), title, project_id: null, created_by: createdBy };
    await this.threadsTable.add(thread as ThreadRow);
    return thread.id;
  }

  /** Appends a message after the thread's last one (by `index`). */
  async sendMessage(threadId: string, author: string, text: string): Promise<string> {
    const id = crypto.randomUUID();
    await this.engine.db.transaction('rw', this.messagesTable, async () => {
      const existing = await this.messagesTable.where('thread_id').equals(threadId).toArray();
      const index = existing.reduce((max, m) => Math.max(max, m.index), -1) + 1;
      const message: NewRow<MessageRow> = { id, thread_id: threadId, index, author, text, edited_at: null };
      await this.messagesTable.add(message as MessageRow);
    });
    return id;
  }

  async editMessage(id: string, text: string): Promise<void> {
    await this.messagesTable.update(id, { text, edited_at: Math.floor(Date.now() / 1000) });
  }

  /** A soft delete: the engine keeps a tombstone, which the queries filter. */
  async deleteMessage(id: string): Promise<void> {
    await this.messagesTable.delete(id);
  }

  /** Undoes the rejected writes of a message: the server's copy comes back (a message the server never had goes away). */
  async discardFailedWrites(message: MessageView): Promise<void> {
    for (const write of message.failedWrites) await this.engine.restoreServerCopy(write.opId);
  }
}

function toView(message: MessageRow, ops: PendingOpRow[]): MessageView {
  const failed = ops.filter((op) => op.status === 'failed');
  const syncState: MessageSyncState = failed.length > 0 ? 'failed' : ops.length > 0 ? 'pending' : 'synced';
  return {
    ...message,
    syncState,
    failedWrites: failed.map((op) => ({ opId: op.op_id, error: op.error?.message ?? op.error?.code ?? 'rejected' })),
  };
}
