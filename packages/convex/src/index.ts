/**
 * @or3/sync-convex: or3-sync's direct mode. The Convex functions live in
 * `convex/` (deploy them with `npx convex deploy`); this entry point holds
 * what the browser needs: the provider and the token broker.
 */
export {
  ConvexSyncProvider,
  PUSH_CALL_BYTES,
  type ConvexSyncProviderOptions,
  type ConvexTransport,
  type SyncFunctionReferences,
} from './convex-sync-provider.js';
export { clerkTokenBroker, type AuthTokenBroker, type ClerkTokenSource } from './auth-token-broker.js';
export { toSyncProviderError } from './provider-errors.js';
export { CONVEX_MAX_PAYLOAD_BYTES } from '../convex/lib/convexLimits.js';
