/**
 * The or3-sync dev overlay, for any app that runs a `SyncEngine`:
 *
 * ```ts
 * const { provider, telemetry } = observeProvider(new GatewayProvider({ baseUrl, getToken }));
 * const engine = await openWorkspace({ workspaceId, provider, schema });
 * const overlay = mountDevOverlay({ engine, telemetry });   // floats in a corner, hidden
 * button.onclick = () => overlay.toggle();
 * ```
 */
export { mountDevOverlay, type DevOverlay, type DevOverlayOptions } from './dev-overlay.js';
export { observeProvider, type ProviderTelemetry } from './provider-telemetry.js';
