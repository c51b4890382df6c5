/** Test devices: each has its own fake-indexeddb, so two devices never share a database. */
import { Dexie } from 'dexie';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import type { SyncEngine } from '../../src/engine.js';
import { openWorkspace, type OpenWorkspaceOptions } from '../../src/attach.js';
import type { SyncProvider } from '../../src/provider.js';

// Dexie's liveQuery stays silent unless it sees an IndexedDB implementation in its
// dependencies (a browser has a global one). Each device below still gets its own.
Dexie.dependencies.indexedDB ??= new IDBFactory();
Dexie.dependencies.IDBKeyRange ??= IDBKeyRange;

/** The app schema the tests use: OR3 Chat's tables, `kv` hard-deleting. */
export const APP_SCHEMA = {
  threads: 'id, project_id, updated_at',
  messages: 'id, thread_id, [thread_id+index]',
  kv: 'id',
  file_meta: 'hash',
};

export const SYNCED_TABLES = {
  threads: {},
  messages: {},
  kv: { deletes: 'hard' as const },
  file_meta: { primaryKey: 'hash' },
};

export interface TestDevice {
  factory: IDBFactory;
  open(overrides?: Partial<OpenWorkspaceOptions>): Promise<SyncEngine>;
}

/** A device (one browser install) syncing `workspaceId` through `provider`. */
export function makeDevice(
  workspaceId: string,
  provider: SyncProvider,
  defaults: Partial<OpenWorkspaceOptions> = {},
): TestDevice {
  const factory = new IDBFactory();
  return {
    factory,
    open: (overrides = {}) =>
      openWorkspace({
        workspaceId,
        provider,
        schema: APP_SCHEMA,
        syncedTables: SYNCED_TABLES,
        dexieOptions: { indexedDB: factory, IDBKeyRange },
        broadcast: false,
        locks: null,
        backoff: { baseMs: 5, maxMs: 50 },
        ...defaults,
        ...overrides,
      }),
  };
}
