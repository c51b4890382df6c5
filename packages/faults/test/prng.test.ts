/** The seeded randomness: the same seed gives the same run. */
import { describe, expect, it } from 'vitest';
import { Prng } from '../src/prng.js';

const take = (p: Prng, n: number) => Array.from({ length: n }, () => p.nextUint32());

describe('Prng', () => {
  it('the same seed and label give the same numbers; another seed or label, others', () => {
    expect(take(new Prng(42, 'x'), 20)).toEqual(take(new Prng(42, 'x'), 20));
    expect(take(new Prng(43, 'x'), 20)).not.toEqual(take(new Prng(42, 'x'), 20));
    expect(take(new Prng(42, 'y'), 20)).not.toEqual(take(new Prng(42, 'x'), 20));
  });

  it('a fork does not depend on how much its parent drew', () => {
    const a = new Prng(5);
    const b = new Prng(5);
    take(b, 100);
    expect(take(a.fork('lane'), 10)).toEqual(take(b.fork('lane'), 10));
  });

  it('helpers stay in range and weights of zero are never drawn', () => {
    const p = new Prng(9);
    for (let i = 0; i < 2000; i++) {
      const x = p.next();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
      expect(p.between(3, 5)).toBeGreaterThanOrEqual(3);
      expect(p.weighted({ never: 0, always: 1 })).toBe('always');
    }
    expect(p.hex(40)).toMatch(/^[0-9a-f]{40}$/);
  });
});
