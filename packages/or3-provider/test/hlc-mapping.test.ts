import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StampMappingError, toGatewayDevice, toGatewayHlc, toOr3Device, toOr3Hlc } from '../src/hlc-mapping.js';
import { or3Hlc } from './support/or3-device.js';

const hex = (length: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: length, maxLength: length });
const or3Stamp = fc.record({ ms: fc.integer({ min: 0, max: 9_999_999_999_999 }), counter: fc.integer({ min: 0, max: 46_655 }), node: hex(8) });
const or3HlcArb = or3Stamp.map(({ ms, counter, node }) => or3Hlc(ms, counter, node));
const gatewayHlcArb = fc
  .record({ ms: fc.integer({ min: 0, max: 9_999_999_999_999 }), counter: fc.integer({ min: 0, max: 999_999 }), device: fc.integer({ min: 16, max: 64 }).chain(hex) })
  .map(({ ms, counter, device }) => `${String(ms).padStart(13, '0')}-${String(counter).padStart(6, '0')}-${device}`);
const sign = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

describe('HLC and device mapping', () => {
  it('an OR3 HLC mapped to the gateway and back is the same HLC', () => {
    fc.assert(fc.property(or3HlcArb, (hlc) => {
      expect(toOr3Hlc(toGatewayHlc(hlc))).toBe(hlc);
    }), { numRuns: 2000 });
  });

  it('the mapping keeps the order of any two OR3 HLCs', () => {
    fc.assert(fc.property(or3HlcArb, or3HlcArb, (a, b) => {
      expect(sign(toGatewayHlc(a), toGatewayHlc(b))).toBe(sign(a, b));
    }), { numRuns: 2000 });
  });

  it('the mapped HLC parses as the gateway spells it, its suffix the mapped device', () => {
    fc.assert(
      fc.property(or3Stamp, ({ ms, counter, node }) => {
        const mapped = toGatewayHlc(or3Hlc(ms, counter, node), node);
        expect(mapped).toBe(`${String(ms).padStart(13, '0')}-${String(counter).padStart(6, '0')}-${toGatewayDevice(node)}`);
        expect(toOr3Device(toGatewayDevice(node))).toBe(node);
      }),
    );
  });

  it('any gateway HLC maps to OR3 without inverting order (stamps from non-OR3 devices may tie)', () => {
    fc.assert(fc.property(gatewayHlcArb, gatewayHlcArb, (a, b) => {
      const [ma, mb] = [toOr3Hlc(a), toOr3Hlc(b)];
      if (a < b) expect(ma <= mb).toBe(true);
      if (a > b) expect(ma >= mb).toBe(true);
    }), { numRuns: 2000 });
  });

  it('an HLC whose node is not the op device is refused, naming the field', () => {
    const hlc = or3Hlc(Date.now(), 0, 'abcdef01');
    expect(() => toGatewayHlc(hlc, '12345678')).toThrow(StampMappingError);
    try {
      toGatewayHlc(hlc, '12345678');
    } catch (error) {
      expect((error as StampMappingError).field).toBe('hlc');
    }
  });

  it('OR3 HLCs in other shapes, and devices that are not 8 hex, are refused', () => {
    for (const bad of ['1736648823456:0003:abc12345', 'zzzzzzzzz:000:abcdef01', '000000001:00:abcdef01', '000000001:000:ABCDEF01']) {
      expect(() => toGatewayHlc(bad)).toThrow(StampMappingError);
    }
    for (const bad of ['abc', 'ABCDEF01', '0123456789']) expect(() => toGatewayDevice(bad)).toThrow(StampMappingError);
  });
});
