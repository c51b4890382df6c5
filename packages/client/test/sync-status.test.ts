/** The one status machine (`syncStateOf`): each state, and which wins when several hold. */
import { describe, expect, it } from 'vitest';
import { syncStateOf, type SyncStateInput } from '../src/sync-status.js';

const SYNCED: SyncStateInput = {
  online: true,
  pause: null,
  pending: 0,
  held: 0,
  failed: 0,
  lastRunError: null,
  channel: 'up',
  channelDownAt: null,
  lastPullAt: 1_000,
  now: 2_000,
  freshMs: 60_000,
};
const state = (changes: Partial<SyncStateInput>) => syncStateOf({ ...SYNCED, ...changes });

describe('the status machine', () => {
  it('synced: nothing waits, the latest run reached the server, the channel is up', () => {
    expect(state({})).toBe('synced');
  });

  it('offline: no network, a run that could not reach the server, or a dropped channel with no pull since', () => {
    expect(state({ online: false })).toBe('offline');
    expect(state({ lastRunError: 'network_error' })).toBe('offline');
    expect(state({ channel: 'down', channelDownAt: 1_500 })).toBe('offline');
    expect(state({ channel: 'down', channelDownAt: 500 })).toBe('synced');
  });

  it('refused and paused: the loops are paused', () => {
    expect(state({ pause: 'refused', lastRunError: 'forbidden' })).toBe('refused');
    expect(state({ pause: 'app', lastRunError: 'paused' })).toBe('paused');
  });

  it('read_only: writes refused while reads go on, over the failed writes it left', () => {
    expect(state({ access: 'read_only', failed: 2 })).toBe('read_only');
    expect(state({ access: 'read_only', pause: 'refused', lastRunError: 'forbidden' })).toBe('refused');
    expect(state({ access: 'read_write', failed: 2 })).toBe('attention');
  });

  it('attention while any op failed, held while any is held; failed wins', () => {
    expect(state({ failed: 1 })).toBe('attention');
    expect(state({ held: 2 })).toBe('held');
    expect(state({ failed: 1, held: 2 })).toBe('attention');
  });

  it('error: the latest run failed for another reason and is retried', () => {
    expect(state({ lastRunError: 'internal' })).toBe('error');
  });

  it('connecting before any run reached the server; syncing while writes wait', () => {
    expect(state({ lastRunError: undefined })).toBe('connecting');
    expect(state({ lastPullAt: null })).toBe('connecting');
    expect(state({ pending: 3 })).toBe('syncing');
  });

  it('stale: no channel up and the last pull older than freshMs', () => {
    expect(state({ channel: null, now: 1_000 + 60_001 })).toBe('stale');
    expect(state({ channel: null, now: 1_000 + 59_000 })).toBe('synced');
  });
});
