/**
 * Opens a workspace for the chat: the gateway provider on the page's own
 * origin (the server serves the app and the API), observed for the dev
 * overlay, and the sync engine over the chat tables.
 */
import { GatewayProvider, openWorkspace, type SyncEngine } from '@or3/sync-client';
import { CHAT_SCHEMA, ChatStore } from './chat-store.js';
import type { DevSession } from './dev-session.js';
import { observeProvider, type ProviderTelemetry } from './dev-overlay/index.js';

/** An open workspace. */
export interface OpenChat {
  engine: SyncEngine;
  store: ChatStore;
  telemetry: ProviderTelemetry;
  /** Stops syncing and closes the database. */
  close(): Promise<void>;
}

/** Opens `workspaceId` for `session`'s user; the engine is idle until `engine.start()`. */
export async function openChat(workspaceId: string, session: DevSession): Promise<OpenChat> {
  const gateway = new GatewayProvider({
    baseUrl: location.origin,
    getToken: session.getToken,
    // Two windows side by side should feel live even while the provider polls.
    pollIntervalMs: 1000,
  });
  const { provider, telemetry } = observeProvider(gateway);
  const engine = await openWorkspace({
    workspaceId,
    provider,
    schema: CHAT_SCHEMA,
    syncedTables: { threads: {}, messages: {} },
  });
  return {
    engine,
    store: new ChatStore(engine),
    telemetry,
    async close() {
      await engine.close();
      provider.dispose();
    },
  };
}
