/**
 * Browser entry of the Chromium adoption test: an app that used Dexie alone
 * (`seedBeforeSync`), then shipped sync (`enableSync`, which attaches to the
 * same database and runs one sync), and reads its rows back (`rows`).
 */
import { Dexie } from 'dexie';
import { attachSync } from '../../src/attach.js';
import { GatewayProvider } from '../../src/gateway/gateway-provider.js';

const SCHEMA = { threads: 'id, updated_at', messages: 'id, thread_id, [thread_id+index]', kv: 'id' };

function appDatabase(workspaceId: string): Dexie {
  const db = new Dexie(`or3-db-${workspaceId}`);
  db.version(1).stores(SCHEMA);
  return db;
}

declare global {
  interface Window {
    seedBeforeSync(workspaceId: string, threads: number): Promise<void>;
    enableSync(baseUrl: string, token: string, workspaceId: string): Promise<{ error: string | null; pending: number }>;
    rows(workspaceId: string, table: string): Promise<Record<string, unknown>[]>;
  }
}

window.seedBeforeSync = async (workspaceId, threads) => {
  const db = appDatabase(workspaceId);
  await db.table('threads').bulkPut(Array.from({ length: threads }, (_, i) => ({ id: `before-${i}`, title: `written offline ${i}`, updated_at: i })));
  await db.table('messages').put({ id: 'before-m0', thread_id: 'before-0', index: 0, content: 'hello from before sync' });
  await db.table('kv').put({ id: 'secret', value: 'stays here' });
  db.close();
};

window.enableSync = async (baseUrl, token, workspaceId) => {
  const engine = await attachSync(appDatabase(workspaceId), {
    workspaceId,
    provider: new GatewayProvider({ baseUrl, getToken: async () => token, WebSocket: null }),
    syncedTables: { threads: {}, messages: {}, kv: { shouldSync: (row) => row.id !== 'secret' } },
    broadcast: false,
  });
  const { error } = await engine.sync();
  const pending = await engine.pendingCount();
  await engine.close();
  return { error, pending };
};

window.rows = async (workspaceId, table) => {
  const db = appDatabase(workspaceId);
  const rows = (await db.table(table).toArray()) as Record<string, unknown>[];
  db.close();
  return rows;
};
