/**
 * Capture, as the rest of the client sees it: the middleware the engine
 * installs, the runtime it shares with it, and the wire form of a local key.
 *
 * - `middleware.ts`: the DBCore middleware (transaction scopes, zones, which writes are captured)
 * - `capture-mutation.ts`: one mutation captured in its transaction, with the foresight path
 * - `plan.ts`: write planning, pure (stamps, rows, ops, tombstones)
 * - `record-io.ts`: reads and writes below the middleware, `pkToWire`
 * - `runtime.ts`: `CaptureRuntime`, `CaptureError`
 */
export { createCaptureMiddleware } from './middleware.js';
export { CaptureError, type CaptureRuntime } from './runtime.js';
export { pkToWire } from './record-io.js';
