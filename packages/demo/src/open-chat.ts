/**
 * Opens a workspace for the chat, as the sync plugin's `open`: the gateway
 * provider on the page's own origin (the server serves the app and the API),
 * observed for the dev overlay, and the sync engine over the chat tables.
 */
import { GatewayProvider, openWorkspace, type SyncEngine } from '@or3/sync-client';
import type { WorkspaceOpener } from '@or3/sync-vue';
import { CHAT_SCHEMA } from './chat-store.js';
import { DevSession, currentUser } from './dev-session.js';
import { observeProvider, type ProviderTelemetry } from './dev-overlay/index.js';
import { syncMayUseNetwork } from './network-mode.js';

const telemetries = new WeakMap<SyncEngine, ProviderTelemetry>();

/** What the overlay learned from an open engine's provider. */
export function telemetryOf(engine: SyncEngine): ProviderTelemetry | undefined {
  return telemetries.get(engine);
}

/** Opens and closes the signed-in user's workspaces. */
export const chatOpener: WorkspaceOpener = {
  async open(workspaceId) {
    const user = currentUser();
    if (!user) throw new Error('nobody is signed in');
    const gateway = new GatewayProvider({
      baseUrl: location.origin,
      getToken: new DevSession(user).getToken,
      // Two windows side by side should feel live even while the provider polls.
      pollIntervalMs: 1000,
    });
    const { provider, telemetry } = observeProvider(gateway);
    const engine = await openWorkspace({
      workspaceId,
      // The database is this user's: another user's data in it is wiped and held before anything shows.
      userId: user,
      provider,
      schema: CHAT_SCHEMA,
      syncedTables: { threads: {}, messages: {} },
    });
    telemetries.set(engine, telemetry);
    return engine;
  },
  start(engine) {
    // Paused before the loops start: an offline device never touches the network.
    if (!syncMayUseNetwork()) engine.pause();
    engine.start();
  },
  async close(engine) {
    await engine.close();
    engine.provider.dispose();
  },
};
