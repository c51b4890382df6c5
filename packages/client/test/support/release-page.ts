/**
 * Browser entry of the Chromium release tests: one engine at a time, opened
 * as a given release of the app (its Dexie schema, version and synced
 * tables), driven from the test through `window.app`.
 */
import { Dexie } from 'dexie';
import { attachSync } from '../../src/attach.js';
import type { SyncEngine } from '../../src/engine.js';
import type { EngineStatus } from '../../src/engine-status.js';
import { GatewayProvider } from '../../src/gateway/gateway-provider.js';

/** A release of the app. */
export interface Release {
  schema: Record<string, string>;
  version: number;
  synced: string[];
  /** The provider's payload limit (a small one makes writes fail). */
  maxPayloadBytes?: number;
}

interface App {
  open(baseUrl: string, token: string, workspaceId: string, release: Release): Promise<void>;
  put(table: string, row: Record<string, unknown>): Promise<void>;
  rows(table: string): Promise<Record<string, unknown>[]>;
  sync(): Promise<string | null>;
  start(): void;
  status(): EngineStatus;
  ops(kind: 'failed' | 'held'): Promise<{ opId: string; pk: string; code: string }[]>;
  discard(opId: string): Promise<void>;
  restore(opId: string): Promise<void>;
  retry(opId: string): Promise<void>;
  close(): Promise<void>;
}

declare global {
  interface Window {
    app: App;
  }
}

let engine: SyncEngine | null = null;
const current = (): SyncEngine => {
  if (!engine) throw new Error('no engine open');
  return engine;
};

window.app = {
  async open(baseUrl, token, workspaceId, release) {
    const db = new Dexie(`or3-db-${workspaceId}`);
    db.version(release.version).stores(release.schema);
    const provider = new GatewayProvider({ baseUrl, getToken: async () => token, maxPayloadBytes: release.maxPayloadBytes });
    engine = await attachSync(db, { workspaceId, provider, syncedTables: release.synced, broadcast: false, outboxPollMs: 200 });
  },
  async put(table, row) {
    await current().db.table(table).put(row);
  },
  async rows(table) {
    return (await current().db.table(table).toArray()) as Record<string, unknown>[];
  },
  async sync() {
    return (await current().sync()).error;
  },
  start() {
    current().start();
  },
  status() {
    return current().status;
  },
  async ops(kind) {
    const ops = kind === 'failed' ? await current().failedOps() : await current().heldOps();
    return ops.map((op) => ({ opId: op.op_id, pk: op.pk, code: op.error?.code ?? '' }));
  },
  discard: (opId) => current().discardFailedOp(opId),
  restore: (opId) => current().restoreServerCopy(opId),
  retry: (opId) => current().retryFailedOp(opId),
  async close() {
    await current().close();
    engine = null;
  },
};
