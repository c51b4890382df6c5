/**
 * A test fixture shaped like OR3 Chat's database (facts from its public
 * schema: the v17 stores, row shapes with epoch-second timestamps, soft
 * deletes, `file_meta` keyed by `hash`, kv ids `kv:<name>` with a unique
 * `&name`, notifications keyed `&id`). Version 16 and its upgrade are this
 * fixture's own: v16 `posts` stored their kind as `type`, and the v17
 * upgrade moves it to `postType`.
 */
import { Dexie } from 'dexie';
import { IDBKeyRange } from 'fake-indexeddb';
import type { SyncedTableOptions } from '../../src/schema.js';

/** OR3 Chat's v17 stores. */
export const OR3_V17_STORES = {
  projects: 'id, name, clock, created_at, updated_at',
  threads:
    'id, project_id, [project_id+updated_at], parent_thread_id, [parent_thread_id+anchor_index], status, pinned, deleted, last_message_at, clock, created_at, updated_at',
  messages:
    'id, [thread_id+index+order_key], [thread_id+index], thread_id, index, role, deleted, stream_id, clock, created_at, updated_at, data.type, [data.type+data.executionState]',
  kv: 'id, &name, clock, created_at, updated_at',
  attachments: 'id, type, name, clock, created_at, updated_at',
  file_meta: 'hash, [kind+deleted], mime_type, clock, created_at, updated_at',
  file_blobs: 'hash',
  posts: 'id, title, postType, [postType+title], deleted, created_at, updated_at',
  pending_ops: 'id, tableName, status, createdAt, [tableName+pk], [status+readyAt+createdAt+id]',
  tombstones: 'id, [tableName+pk], deletedAt',
  sync_state: 'id',
  sync_runs: 'id, startedAt, status',
  notifications: '&id, user_id, [user_id+read_at], [user_id+created_at], [user_id+thread_id], type, deleted, clock, created_at, updated_at',
};

/** The fixture's v16: no notifications, posts indexed by `type`. */
const FIXTURE_V16_STORES = {
  ...Object.fromEntries(Object.entries(OR3_V17_STORES).filter(([name]) => name !== 'notifications')),
  posts: 'id, title, type, deleted, created_at, updated_at',
};

/** kv names that hold secrets and never leave the device. */
export const OR3_SECRET_KV_NAMES = new Set(['openrouter_api_key']);

/** OR3 Chat's conventions for or3-sync: the whole configuration. */
export const OR3_SYNCED_TABLES: Record<string, SyncedTableOptions> = {
  projects: {},
  threads: { projectScoped: true },
  // A message still streaming (`pending: true`) syncs once it is final.
  messages: { shouldSync: (message) => message.pending !== true },
  kv: { shouldSync: (kv) => !OR3_SECRET_KV_NAMES.has(String(kv.name)) },
  // How many local attachments point at a file is this device's business.
  file_meta: { primaryKey: 'hash', localOnlyFields: ['ref_count'] },
  posts: { wireNames: { postType: 'post_type' } },
  notifications: {},
};

/** OR3 Chat's Dexie on `factory`, declared up to `version` (16 or 17), not opened. */
export function or3Database(workspaceId: string, factory: IDBFactory, version: 16 | 17 = 17): Dexie {
  const db = new Dexie(`or3-db-${workspaceId}`, { indexedDB: factory, IDBKeyRange });
  db.version(16).stores(FIXTURE_V16_STORES);
  if (version === 17) {
    db.version(17)
      .stores(OR3_V17_STORES)
      .upgrade(async (tx) => {
        await tx
          .table('posts')
          .toCollection()
          .modify((post: Record<string, unknown>) => {
            post.postType = post.type;
            delete post.type;
          });
      });
  }
  return db;
}

/** Epoch seconds, as OR3 Chat stores them. */
const T0 = 1_764_000_000;

/** Rows a user made before sync was switched on (v16 shapes, no `hlc`), prefixed so two devices' rows differ. */
export function offlineRows(prefix: string, counts = { threads: 3, messages: 4 }): Record<string, Record<string, unknown>[]> {
  const threads = Array.from({ length: counts.threads }, (_, i) => ({
    id: `${prefix}-t${i}`,
    project_id: `${prefix}-p0`,
    title: `thread ${i}`,
    status: 'ready',
    pinned: false,
    deleted: false,
    parent_thread_id: null,
    last_message_at: T0 + i,
    clock: 1,
    created_at: T0 + i,
    updated_at: T0 + i,
  }));
  const messages = Array.from({ length: counts.messages }, (_, i) => ({
    id: `${prefix}-m${i}`,
    thread_id: `${prefix}-t0`,
    index: i,
    role: i % 2 ? 'assistant' : 'user',
    data: { content: `message ${i}` },
    deleted: false,
    stream_id: null,
    clock: 1,
    created_at: T0 + i,
    updated_at: T0 + i,
  }));
  return {
    projects: [{ id: `${prefix}-p0`, name: `project ${prefix}`, clock: 2, created_at: T0, updated_at: T0 + 5 }],
    threads,
    messages,
    kv: [
      { id: `kv:${prefix}-setting`, name: `${prefix}-setting`, value: prefix, clock: 1, created_at: T0, updated_at: T0 },
      { id: 'kv:openrouter_api_key', name: 'openrouter_api_key', value: `sk-${prefix}`, clock: 1, created_at: T0, updated_at: T0 },
    ],
    file_meta: [
      { hash: `${prefix}-h0`, name: 'a.png', kind: 'image', mime_type: 'image/png', ref_count: 3, deleted: false, clock: 1, created_at: T0, updated_at: T0 },
    ],
    file_blobs: [{ hash: `${prefix}-h0`, bytes: 'local blob' }],
    attachments: [{ id: `${prefix}-a0`, type: 'image', name: 'a.png', clock: 1, created_at: T0, updated_at: T0 }],
    posts: [{ id: `${prefix}-post0`, title: 'hello', type: 'markdown', deleted: false, created_at: T0, updated_at: T0 }],
    // OR3 Chat's own sync bookkeeping, which the engine must leave alone.
    pending_ops: [{ id: `${prefix}-op0`, tableName: 'threads', pk: `${prefix}-t0`, status: 'pending', createdAt: T0, readyAt: T0 }],
    tombstones: [{ id: `${prefix}-tomb0`, tableName: 'threads', pk: `${prefix}-gone`, deletedAt: T0 }],
    sync_state: [{ id: 'cursor', value: 41 }],
    sync_runs: [{ id: `${prefix}-run0`, startedAt: T0, status: 'done' }],
  };
}

/** Writes `rows` with the app's own Dexie at its current version, then closes it. */
export async function seed(db: Dexie, rows: Record<string, Record<string, unknown>[]>): Promise<void> {
  await db.open();
  await db.transaction('rw', Object.keys(rows), async () => {
    for (const [table, list] of Object.entries(rows)) await db.table(table).bulkPut(list);
  });
  db.close();
}
