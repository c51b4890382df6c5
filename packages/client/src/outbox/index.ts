/**
 * The outbox: the one owner of `_or3sync_outbox`. An op's state is one typed
 * value (`op-state.ts`, pure transitions), stored in the columns every release
 * wrote (`table.ts`); the queries and writes are `queries.ts` (Table API) and
 * `capture-io.ts` (below the middleware). No other module touches the store
 * (`test/outbox-layer.test.ts` checks).
 */
export * from './op-state.js';
export * from './table.js';
export * as outbox from './queries.js';
export { captureOutbox, type CaptureOutbox } from './capture-io.js';
