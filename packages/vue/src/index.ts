/**
 * @or3/sync-vue: or3-sync for Vue 3. Install `createSyncPlugin({ open })`,
 * switch workspaces with `useActiveWorkspace().switchTo(id)`, and read with
 * `useLiveQuery`, `useSyncStatus` and `useFailedOps`.
 */
export { ActiveWorkspace, type WorkspaceOpener } from './active-workspace.js';
export {
  ACTIVE_WORKSPACE_KEY,
  createSyncPlugin,
  useActiveWorkspace,
  type SyncPlugin,
  type SyncPluginOptions,
} from './sync-plugin.js';
export { useLiveQuery, type LiveQueryOptions } from './use-live-query.js';
export { useSyncStatus } from './use-sync-status.js';
export { syncStateOf, type SyncState, type SyncStatus } from './sync-status.js';
export { useFailedOps, type FailedOps } from './use-failed-ops.js';
