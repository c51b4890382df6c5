/** Runs the repo's conformance vectors (conformance/hlc.json, lww.json) against the client's rules. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compareHlc, formatHlc, hlcReceive, hlcSend, parseHlc } from '../src/hlc.js';
import { compareStamps } from '../src/lww.js';

function vectors(file: string): Record<string, unknown>[] {
  const path = fileURLToPath(new URL(`../../../conformance/${file}`, import.meta.url));
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as { vectors: Record<string, unknown>[] };
  expect(parsed.vectors.length).toBeGreaterThan(0);
  return parsed.vectors;
}

type State = { ms: number; counter: number };
const toState = (s: State) => ({ ms: s.ms, counter: s.counter });

describe('conformance/hlc.json', () => {
  const all = vectors('hlc.json');
  const known = new Set(['format', 'parse_error', 'compare', 'send', 'receive']);

  it('has only kinds this runner knows', () => {
    expect(all.filter((v) => !known.has(v.kind as string)).map((v) => v.why)).toEqual([]);
  });

  for (const v of all) {
    it(`${v.kind}: ${v.why}`, () => {
      switch (v.kind) {
        case 'format': {
          const text = formatHlc(v.ms as number, v.counter as number, v.device_id as string);
          expect(text).toBe(v.expect);
          expect(parseHlc(text)).toEqual({ ms: v.ms, counter: v.counter, deviceId: v.device_id });
          break;
        }
        case 'parse_error':
          expect(() => parseHlc(v.hlc as string)).toThrow();
          break;
        case 'compare':
          expect(compareHlc(v.a as string, v.b as string)).toBe(v.expect);
          expect(compareHlc(v.b as string, v.a as string)).toBe(-(v.expect as number) || 0);
          break;
        case 'send':
          expect(hlcSend(toState(v.state as State), v.now as number)).toEqual(v.expect);
          break;
        case 'receive':
          expect(hlcReceive(toState(v.state as State), toState(v.remote as State), v.now as number)).toEqual(v.expect);
          break;
        default:
          throw new Error(`unknown kind ${String(v.kind)}`);
      }
    });
  }
});

describe('conformance/lww.json', () => {
  type WireStamp = { clock: number; hlc: string; op_id: string; deleted: boolean };
  const answer = { a: 1, b: -1, equal: 0 } as const;
  for (const v of vectors('lww.json')) {
    it(v.why as string, () => {
      expect(Object.keys(v).sort()).toEqual(['a', 'b', 'expect', 'why']);
      const a = v.a as WireStamp;
      const b = v.b as WireStamp;
      const expected = answer[v.expect as keyof typeof answer];
      expect(expected).toBeDefined();
      expect(compareStamps(a, b)).toBe(expected);
      expect(compareStamps(b, a)).toBe(-expected || 0);
    });
  }
});
