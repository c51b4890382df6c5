/** The one stamp order: (clock, hlc, op_id) as (integer, UTF-8 bytes, UTF-8 bytes), and the byte measures. */
import { describe, expect, it } from 'vitest';
import { compareStamps } from '../src/stamps.js';
import { compactJsonBytes, compareUtf8, utf8ByteLength } from '../src/utf8.js';
import { validateOp } from '../src/validate.js';

const bytes = (s: string) => Buffer.from(s, 'utf8');
/** The reference: Node's own byte comparison of the UTF-8 encodings, as Rust's `as_bytes().cmp()`. */
const byBytes = (a: string, b: string) => Math.sign(Buffer.compare(bytes(a), bytes(b)));
const stamp = (op_id: string | null, hlc = '1732540000000-000000-0123456789abcdef', clock = 1) => ({ clock, hlc, op_id });

describe('compareUtf8', () => {
  it('orders U+FFFF before U+10000, where UTF-16 units order them the other way', () => {
    expect('\uFFFF' < '\u{10000}').toBe(false); // the UTF-16 order this package exists to avoid
    expect(compareUtf8('\uFFFF', '\u{10000}')).toBe(-1);
    expect(compareUtf8('\u{10000}', '\uFFFF')).toBe(1);
    expect(byBytes('\uFFFF', '\u{10000}')).toBe(-1);
  });

  it('agrees with a comparison of the encoded bytes on strings that mix every range', () => {
    const samples = ['', 'a', 'ab', 'b', '\u007f', '\u0080', '\u07ff', '\u0800', '\ud7ff', '\ue000', '\uffff',
      '\u{10000}', '\u{1f600}', '\u{10ffff}', 'a\u{1f600}', 'a\uffff', 'a\ue000b', '\u{1f600}a', 'é', 'e\u0301'];
    for (const a of samples) {
      for (const b of samples) expect([a, b, compareUtf8(a, b)]).toEqual([a, b, byBytes(a, b)]);
    }
  });

  it('is 0 only for equal strings and ranks a prefix first', () => {
    expect(compareUtf8('abc', 'abc')).toBe(0);
    expect(compareUtf8('ab', 'abc')).toBe(-1);
    expect(compareUtf8('abc', 'ab')).toBe(1);
  });
});

describe('compareStamps', () => {
  it('a higher clock wins whatever the hlc and op_id', () => {
    expect(compareStamps(stamp('a', '1732540000000-000000-0123456789abcdef', 2), stamp('z', '1732540000001-000000-0123456789abcdef', 1))).toBe(1);
  });

  it('breaks an hlc tie by op_id in UTF-8 byte order, not UTF-16 order', () => {
    expect(compareStamps(stamp('\u{10000}'), stamp('\uFFFF'))).toBe(1);
    expect(compareStamps(stamp('\uFFFF'), stamp('\u{10000}'))).toBe(-1);
  });

  it('orders hlc by UTF-8 bytes too', () => {
    expect(compareStamps(stamp('x', '1-\u{10000}'), stamp('x', '1-\uFFFF'))).toBe(1);
  });

  it('an unknown op id sorts lowest, and equal stamps are the same write', () => {
    expect(compareStamps(stamp(null), stamp('00000000-0000-0000-0000-000000000000'))).toBe(-1);
    expect(compareStamps(stamp(null), stamp(null))).toBe(0);
    expect(compareStamps(stamp('a'), stamp('a'))).toBe(0);
  });
});

describe('payload bytes', () => {
  it('counts UTF-8 bytes, not UTF-16 units', () => {
    expect(utf8ByteLength('\u{1f600}')).toBe(4);
    expect('\u{1f600}'.length).toBe(2);
    expect(utf8ByteLength('é\u0800a')).toBe(6);
    expect(compactJsonBytes({ a: 'é' })).toBe(bytes(JSON.stringify({ a: 'é' })).length);
  });
});

describe('validateOp', () => {
  const rules = {
    tables: new Map([['threads', 'id']]),
    maxPayloadBytes: 1024,
    maxClockSkewMs: 300_000,
    nowMs: 1_732_540_000_000,
  };
  const op = {
    op_id: '0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B',
    table_name: 'threads',
    operation: 'put',
    pk: 't1',
    payload: { id: 't1' },
    clock: 1,
    hlc: '1732540000000-000000-0123456789abcdef',
    device_id: '0123456789abcdef',
  };

  it('lowercases the op id of a valid op', () => {
    const outcome = validateOp(op, rules);
    expect(outcome.ok && outcome.op.op_id).toBe('0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b');
  });

  it("runs the backend's payload check after the size check and before the skew check", () => {
    const checkPayload = () => ({ code: 'invalid_op' as const, message: 'not storable here' });
    const outcome = validateOp({ ...op, hlc: '9999999999999-000000-0123456789abcdef' }, { ...rules, checkPayload });
    expect(outcome.ok ? null : outcome.rejection).toEqual({ code: 'invalid_op', message: 'not storable here', field: 'payload' });
    const tooBig = validateOp(op, { ...rules, maxPayloadBytes: 2, checkPayload });
    expect(tooBig.ok ? null : tooBig.rejection.code).toBe('payload_too_large');
  });
});
