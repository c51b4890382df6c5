/** What a refused push means, told by the pull after it (PROTOCOL.md section 6, "Access changes"). */
import { describe, expect, it } from 'vitest';
import { accessAfterRefusedPush, isRefusal } from '../src/people/access.js';
import { SyncProviderError } from '../src/provider.js';

const forbidden = new SyncProviderError({ code: 'forbidden', message: 'not a member of this workspace', status: 403 });
const gone = new SyncProviderError({ code: 'not_found', message: 'no such workspace', status: 404 });
const offline = new SyncProviderError({ code: 'network_error', message: 'fetch failed', status: 0 });

describe('a push refused with 403', () => {
  it('is read_only when the pull after it succeeds: the user still reads', () => {
    expect(accessAfterRefusedPush({ ok: true })).toBe('read_only');
  });

  it('is revoked when the pull is refused too (removed member, or the workspace is gone)', () => {
    expect(accessAfterRefusedPush({ ok: false, error: forbidden })).toBe('revoked');
    expect(accessAfterRefusedPush({ ok: false, error: gone })).toBe('revoked');
  });

  it('tells nothing when the pull failed for a passing reason: the run is retried as any other', () => {
    expect(accessAfterRefusedPush({ ok: false, error: offline })).toBeNull();
    expect(accessAfterRefusedPush({ ok: false, error: new Error('boom') })).toBeNull();
  });

  it('only 403 and 404 are refusals', () => {
    expect([forbidden, gone, offline, new Error('x')].map(isRefusal)).toEqual([true, true, false, false]);
  });
});
