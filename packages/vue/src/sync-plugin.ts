/**
 * The Vue plugin: `app.use(createSyncPlugin({ open }))` provides one
 * `ActiveWorkspace` to every component; `useActiveWorkspace()` injects it.
 */
import { inject, type App, type InjectionKey } from 'vue';
import { ActiveWorkspace, type WorkspaceOpener } from './active-workspace.js';

/** The injection key of the app's `ActiveWorkspace` (for `provide` in tests or nested apps). */
export const ACTIVE_WORKSPACE_KEY: InjectionKey<ActiveWorkspace> = Symbol('or3-sync:active-workspace');

/** Options of `createSyncPlugin`: how to open a workspace, and which one to open first. */
export interface SyncPluginOptions extends WorkspaceOpener {
  /** Opened at install time, when set. */
  initialWorkspaceId?: string | null;
}

/** A plugin that also hands out its `ActiveWorkspace` (to switch workspaces outside components). */
export interface SyncPlugin {
  readonly workspace: ActiveWorkspace;
  install(app: App): void;
}

/** Creates the plugin and its `ActiveWorkspace`. */
export function createSyncPlugin(options: SyncPluginOptions): SyncPlugin {
  const workspace = new ActiveWorkspace(options);
  return {
    workspace,
    install(app: App) {
      app.provide(ACTIVE_WORKSPACE_KEY, workspace);
      if (options.initialWorkspaceId) void workspace.switchTo(options.initialWorkspaceId);
    },
  };
}

/** The app's `ActiveWorkspace`; throws when the plugin is not installed. */
export function useActiveWorkspace(): ActiveWorkspace {
  const workspace = inject(ACTIVE_WORKSPACE_KEY, null);
  if (!workspace) throw new Error('or3-sync: install createSyncPlugin() (or provide ACTIVE_WORKSPACE_KEY) first');
  return workspace;
}
