import { describe, expect, it } from 'vitest';
import { newDeviceId, newOpId } from '../src/ids.js';

describe('ids', () => {
  it('op ids are RFC 4122 version 4 UUIDs, unique', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const id = newOpId();
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      ids.add(id);
    }
    expect(ids.size).toBe(2000);
  });

  it('op ids do not need crypto.randomUUID (insecure contexts lack it)', () => {
    const original = crypto.randomUUID;
    Object.defineProperty(crypto, 'randomUUID', { value: undefined, configurable: true });
    try {
      expect(newOpId()).toHaveLength(36);
    } finally {
      Object.defineProperty(crypto, 'randomUUID', { value: original, configurable: true });
    }
  });

  it('device ids are 32 lowercase hex characters', () => {
    expect(newDeviceId()).toMatch(/^[0-9a-f]{32}$/);
  });
});
