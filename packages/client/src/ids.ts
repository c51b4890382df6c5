/** Random identifiers: op ids (UUID v4) and device ids (32 lowercase hex chars). */

function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  crypto.getRandomValues(bytes);
  return bytes;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * A fresh op id (UUID v4), unique forever. Built from `getRandomValues`,
 * which browsers offer everywhere, rather than `crypto.randomUUID`, which
 * they offer only in secure contexts: an app served over plain http on a
 * LAN must still be able to write.
 */
export function newOpId(): string {
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40; // version 4
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const h = hex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A fresh device id for a new install. */
export function newDeviceId(): string {
  return hex(randomBytes(16));
}
