/**
 * @or3/sync-protocol: the or3-sync protocol's rules in TypeScript, with no
 * dependencies, for every TypeScript side of the wire (the client engine and
 * the Convex functions): the wire types, the HLC, the one stamp order and op
 * validation. The Rust twin is `sync_core`; both are held to conformance/.
 */
export * from './wire.js';
export {
  formatHlc,
  parseHlc,
  tryParseHlc,
  compareHlc,
  hlcSend,
  hlcReceive,
  isDeviceId,
  InvalidHlcError,
  HLC_MAX_COUNTER,
  HLC_MAX_DRIFT_MS,
  type HlcState,
  type ParsedHlc,
} from './hlc.js';
export { compareStamps, type Stamp } from './stamps.js';
export { compareUtf8, utf8ByteLength, compactJsonBytes } from './utf8.js';
export {
  validateOp,
  isObject,
  type ValidOp,
  type ValidationRules,
  type ValidationOutcome,
  type ValidationRejection,
  type PayloadProblem,
} from './validate.js';
