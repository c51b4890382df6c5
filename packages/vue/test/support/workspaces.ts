/**
 * Test workspaces: engines on one fake-indexeddb per test, each syncing
 * through its own scripted provider (the client's test double), and a host
 * component that mounts a composable inside the plugin.
 */
import { Dexie } from 'dexie';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { defineComponent, h } from 'vue';
import { mount } from '@vue/test-utils';
import { openWorkspace, type RealtimeState, type SyncEngine, type Unsubscribe } from '@or3/sync-client';
import { ScriptedProvider } from '../../../client/test/support/scripted-provider.js';
import { createSyncPlugin, type SyncPlugin } from '../../src/index.js';

// liveQuery needs an IndexedDB in Dexie's dependencies to notice writes (a browser has one).
Dexie.dependencies.indexedDB ??= new IDBFactory();
Dexie.dependencies.IDBKeyRange ??= IDBKeyRange;

/** A scripted provider that also reports realtime state, as `GatewayProvider` does. */
export class RealtimeScriptedProvider extends ScriptedProvider {
  private readonly listeners = new Set<(state: RealtimeState) => void>();

  onRealtimeState(listener: (state: RealtimeState) => void): Unsubscribe {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  report(state: RealtimeState): void {
    for (const listener of this.listeners) listener(state);
  }

  get realtimeListeners(): number {
    return this.listeners.size;
  }
}

/** What a test holds: the plugin, the providers by workspace, and every engine opened. */
export interface TestApp {
  plugin: SyncPlugin;
  /** The device's IndexedDB. */
  factory: IDBFactory;
  providers: Map<string, RealtimeScriptedProvider>;
  opened: SyncEngine[];
}

/** A plugin whose `open` makes a fresh engine per workspace on one device; `configure` scripts each provider first. */
export function testApp(configure: (provider: RealtimeScriptedProvider) => void = () => {}): TestApp {
  const factory = new IDBFactory();
  const providers = new Map<string, RealtimeScriptedProvider>();
  const opened: SyncEngine[] = [];
  const plugin = createSyncPlugin({
    async open(workspaceId) {
      const provider = new RealtimeScriptedProvider();
      configure(provider);
      providers.set(workspaceId, provider);
      const engine = await openWorkspace({
        workspaceId,
        userId: 'alice',
        provider,
        schema: { notes: 'id' },
        dexieOptions: { indexedDB: factory, IDBKeyRange },
        broadcast: false,
        locks: null,
        backoff: { baseMs: 5, maxMs: 20 },
        safetyPullMs: 0,
      });
      opened.push(engine);
      return engine;
    },
  });
  return { plugin, factory, providers, opened };
}

/** Mounts a component whose setup runs `setup` (inside the plugin); returns the wrapper and what setup returned. */
export function mountWith<T>(app: TestApp, setup: () => T) {
  let value: T | undefined;
  const Host = defineComponent({
    setup() {
      value = setup();
      return () => h('div');
    },
  });
  const wrapper = mount(Host, { global: { plugins: [app.plugin] } });
  return { wrapper, value: value as T };
}

/** Polls `check` until it holds (the engine and liveQuery are asynchronous). */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
