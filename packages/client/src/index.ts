/**
 * @or3/sync-client: the browser half of or3-sync.
 */
export * from './wire.js';
export * from './provider.js';
