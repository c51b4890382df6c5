/**
 * Parsing of HLC stamps (PROTOCOL.md section 2). The server never generates
 * HLCs; it only parses them to check the device suffix and the clock skew.
 */

/** A parsed `"<ms:13>-<counter:6>-<device_id>"` stamp. */
export interface ParsedHlc {
  ms: number;
  counter: number;
  deviceId: string;
}

const DIGITS = /^[0-9]+$/;

/** True for 16 to 64 lowercase hex chars, the shape of a `device_id`. */
export function isDeviceId(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9a-f]{16,64}$/.test(value);
}

/**
 * Parses an HLC strictly: exactly 13 ASCII digits, `-`, exactly 6 ASCII
 * digits, `-`, a device id. Anything else (signs, whitespace, a trailing
 * newline, uppercase hex) is refused with null.
 */
export function parseHlc(value: string): ParsedHlc | null {
  const parts = value.split('-');
  if (parts.length !== 3) return null;
  const [ms, counter, deviceId] = parts as [string, string, string];
  if (ms.length !== 13 || !DIGITS.test(ms)) return null;
  if (counter.length !== 6 || !DIGITS.test(counter)) return null;
  if (!isDeviceId(deviceId)) return null;
  return { ms: Number(ms), counter: Number(counter), deviceId };
}
