/**
 * Hybrid logical clock (PROTOCOL.md section 2): pure state transitions,
 * formatting and strict parsing, pinned by conformance/hlc.json. A client
 * stamps and receives; a server only parses (device suffix, clock skew).
 * Keeping the state is the caller's business (the client's capture persists
 * it in the same transaction as each write).
 */
import { compareUtf8 } from './utf8.js';

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

const HLC_PATTERN = /^([0-9]{13})-([0-9]{6})-([0-9a-f]{16,64})$/;
const DEVICE_ID_PATTERN = /^[0-9a-f]{16,64}$/;

/** Error for a string that is not a valid HLC stamp. */
export class InvalidHlcError extends Error {
  constructor(readonly value: string) {
    super(`invalid hlc: ${JSON.stringify(value)}`);
    this.name = 'InvalidHlcError';
  }
}

/** True for a valid device id: 16 to 64 lowercase hex chars. */
export function isDeviceId(value: unknown): value is string {
  return typeof value === 'string' && DEVICE_ID_PATTERN.test(value);
}

/** Formats `"<ms:13>-<counter:6>-<device_id>"`. */
export function formatHlc(ms: number, counter: number, deviceId: string): string {
  return `${String(ms).padStart(13, '0')}-${String(counter).padStart(6, '0')}-${deviceId}`;
}

/**
 * Parses a stamp strictly: exactly 13 ASCII digits, `-`, exactly 6 ASCII
 * digits, `-`, a device id, and nothing else (no signs, whitespace, trailing
 * newline or uppercase hex). Null when it does not parse.
 */
export function tryParseHlc(value: string): ParsedHlc | null {
  const match = HLC_PATTERN.exec(value);
  if (!match) return null;
  return { ms: Number(match[1]), counter: Number(match[2]), deviceId: match[3]! };
}

/** Parses a stamp strictly (as `tryParseHlc`); throws `InvalidHlcError`. */
export function parseHlc(value: string): ParsedHlc {
  const parsed = tryParseHlc(value);
  if (parsed === null) throw new InvalidHlcError(value);
  return parsed;
}

/** Bytewise order of two stamps: -1, 0 or 1. */
export function compareHlc(a: string, b: string): -1 | 0 | 1 {
  return compareUtf8(a, b);
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
