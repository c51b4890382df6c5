/**
 * Hybrid logical clock (PROTOCOL.md section 2): pure state transitions,
 * formatting and strict parsing. Storage of the state lives in the capture
 * middleware, which persists it in the same transaction as each write.
 */

/** The clock's state: wall-clock ms and a counter within that ms. */
export interface HlcState {
  ms: number;
  counter: number;
}

/** A parsed HLC stamp. */
export interface ParsedHlc extends HlcState {
  deviceId: string;
}

/** Largest counter before the clock rolls into the next ms. */
export const HLC_MAX_COUNTER = 999_999;
/** A remote stamp further ahead of `now` than this is ignored on receive. */
export const HLC_MAX_DRIFT_MS = 60_000;

const HLC_PATTERN = /^(\d{13})-(\d{6})-([0-9a-f]{16,64})$/;
const DEVICE_ID_PATTERN = /^[0-9a-f]{16,64}$/;

/** Error for a string that is not a valid HLC stamp. */
export class InvalidHlcError extends Error {
  constructor(readonly value: string) {
    super(`invalid hlc: ${JSON.stringify(value)}`);
    this.name = 'InvalidHlcError';
  }
}

/** True for a valid device id: 16 to 64 lowercase hex chars. */
export function isDeviceId(value: string): boolean {
  return DEVICE_ID_PATTERN.test(value);
}

/** Formats `"<ms:13>-<counter:6>-<device_id>"`. */
export function formatHlc(ms: number, counter: number, deviceId: string): string {
  return `${String(ms).padStart(13, '0')}-${String(counter).padStart(6, '0')}-${deviceId}`;
}

/** Parses a stamp strictly; throws `InvalidHlcError`. */
export function parseHlc(value: string): ParsedHlc {
  const match = HLC_PATTERN.exec(value);
  if (!match) throw new InvalidHlcError(value);
  return { ms: Number(match[1]), counter: Number(match[2]), deviceId: match[3]! };
}

/** Bytewise order of two stamps: -1, 0 or 1. */
export function compareHlc(a: string, b: string): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

function normalize(ms: number, counter: number): HlcState {
  return counter > HLC_MAX_COUNTER ? { ms: ms + 1, counter: 0 } : { ms, counter };
}

/** The state after stamping a local event at wall time `now`. */
export function hlcSend(state: HlcState, now: number): HlcState {
  if (now > state.ms) return { ms: now, counter: 0 };
  return normalize(state.ms, state.counter + 1);
}

/** The state after observing a remote stamp at wall time `now`. */
export function hlcReceive(state: HlcState, remote: HlcState, now: number): HlcState {
  if (remote.ms > now + HLC_MAX_DRIFT_MS) return state;
  const m = Math.max(state.ms, remote.ms, now);
  let counter: number;
  if (m === state.ms && m === remote.ms) counter = Math.max(state.counter, remote.counter) + 1;
  else if (m === state.ms) counter = state.counter + 1;
  else if (m === remote.ms) counter = remote.counter + 1;
  else counter = 0;
  return normalize(m, counter);
}
