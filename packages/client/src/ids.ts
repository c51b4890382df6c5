/** Random identifiers: op ids (UUID v4) and device ids (32 lowercase hex chars). */

/** A fresh op id, unique forever. */
export function newOpId(): string {
  return crypto.randomUUID();
}

/** A fresh device id for a new install. */
export function newDeviceId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
