/**
 * Runs the repo's rule vectors (conformance/hlc.json, lww.json,
 * validation.json) against this package, the rules the client and the Convex
 * functions both run. push.json needs a store; Convex runs it on its mutation.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compareHlc, formatHlc, hlcReceive, hlcSend, parseHlc, tryParseHlc } from '../src/hlc.js';
import { compareStamps } from '../src/stamps.js';
import { validateOp } from '../src/validate.js';

function vectorFile(file: string): { vectors: Record<string, unknown>[]; [key: string]: unknown } {
  const path = fileURLToPath(new URL(`../../../conformance/${file}`, import.meta.url));
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as { vectors: Record<string, unknown>[] };
  expect(parsed.vectors.length).toBeGreaterThan(0);
  return parsed;
}

const vectors = (file: string) => vectorFile(file).vectors;

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
          expect(tryParseHlc(text)).toEqual({ ms: v.ms, counter: v.counter, deviceId: v.device_id });
          break;
        }
        case 'parse_error':
          expect(() => parseHlc(v.hlc as string)).toThrow();
          expect(tryParseHlc(v.hlc as string)).toBeNull();
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

describe('conformance/validation.json', () => {
  interface VectorConfig {
    tables: Record<string, string>;
    max_payload_bytes: number;
    max_clock_skew_ms: number;
    now_ms: number;
  }
  const file = vectorFile('validation.json');
  const base = file.config as VectorConfig;
  const configKeys = ['max_clock_skew_ms', 'max_payload_bytes', 'now_ms', 'tables'];

  it('has the documented shape', () => {
    expect(Object.keys(file).sort()).toEqual(['config', 'description', 'vectors']);
    expect(Object.keys(base).sort()).toEqual(configKeys);
  });

  for (const v of file.vectors) {
    it(v.why as string, () => {
      for (const key of Object.keys(v)) expect(['why', 'op', 'expect', 'config']).toContain(key);
      const override = (v.config ?? {}) as Partial<VectorConfig>;
      for (const key of Object.keys(override)) expect(configKeys).toContain(key);
      const config: VectorConfig = { ...base, ...override };
      if (v.expect !== 'ok') expect(Object.keys(v.expect as object)).toEqual(['rejected']);
      const expectedCode = v.expect === 'ok' ? null : (v.expect as { rejected: string }).rejected;

      const outcome = validateOp(v.op, {
        tables: new Map(Object.entries(config.tables)),
        maxPayloadBytes: config.max_payload_bytes,
        maxClockSkewMs: config.max_clock_skew_ms,
        nowMs: config.now_ms,
      });
      expect(outcome.ok ? null : outcome.rejection.code).toBe(expectedCode);
      if (!outcome.ok) expect(outcome.rejection.retryable === true).toBe(expectedCode === 'clock_skew');
    });
  }
});
