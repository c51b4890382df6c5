/**
 * Strings as the protocol measures and orders them: by their UTF-8 bytes
 * (PROTOCOL.md sections 2 and 4), which is what Rust's `str` comparison and
 * `len()` give. JavaScript strings are UTF-16, whose `<` and `.length`
 * disagree with UTF-8 above U+FFFF, so every comparison and size check of
 * the protocol goes through here.
 */

/**
 * Order of two strings by their UTF-8 bytes: -1, 0 or 1. UTF-8 byte order is
 * code point order; UTF-16 unit order differs from it only where a surrogate
 * (U+D800 to U+DFFF, half of a character above U+FFFF) meets a unit from
 * U+E000 to U+FFFF, so at the first differing unit those two ranges swap
 * places. No encoding is allocated.
 */
export function compareUtf8(a: string, b: string): -1 | 0 | 1 {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) < codePointRank(y) ? -1 : 1;
  }
  return a.length < b.length ? -1 : 1;
}

/** A UTF-16 unit's place in code point order: surrogates after U+FFFF, the units above them shifted down. */
function codePointRank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}

/** UTF-8 byte length of a string, without allocating its encoding (a lone surrogate counts 3, as U+FFFD would). */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** UTF-8 byte length of a value as compact JSON (`JSON.stringify`), the way payload sizes are measured. */
export function compactJsonBytes(value: unknown): number {
  return utf8ByteLength(JSON.stringify(value));
}
