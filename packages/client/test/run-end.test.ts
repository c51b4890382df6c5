/** How a run ends (`src/run-end.ts`): the pure classification the engine and its scheduler act on. */
import { describe, expect, it } from 'vitest';
import type { SyncErrorCode } from '@or3/sync-protocol';
import { SyncProviderError } from '../src/provider.js';
import { classifyFailure, EngineRunError, endOfRun, pullsAfterPushFailure, retriesAfter, runErrorCode } from '../src/run-end.js';

const provider = (code: SyncErrorCode, status: number, retryAfterMs: number | null = null) =>
  new SyncProviderError({ code, message: code, status, retryAfterMs });

describe('run outcomes', () => {
  it('403 and 404 are refusals: the engine pauses', () => {
    expect(classifyFailure(provider('forbidden', 403))).toEqual({ kind: 'refused', code: 'forbidden', message: 'forbidden' });
    expect(classifyFailure(provider('not_found', 404))).toMatchObject({ kind: 'refused', code: 'not_found' });
  });

  it('no answer (status 0) is unreachable: backed off, and the run does not go on to pull', () => {
    const failure = classifyFailure(provider('network_error', 0));
    expect(failure).toEqual({ kind: 'unreachable', code: 'network_error', message: 'network_error', retryAfterMs: null });
    expect(pullsAfterPushFailure(failure)).toBe(false);
  });

  it('any other answer is retried after the backoff, keeping Retry-After', () => {
    expect(classifyFailure(provider('rate_limited', 429, 2000))).toEqual({ kind: 'retry', code: 'rate_limited', message: 'rate_limited', retryAfterMs: 2000 });
    expect(classifyFailure(provider('store_unavailable', 503))).toMatchObject({ kind: 'retry', retryAfterMs: null });
  });

  it('a clock-skew give-up is retried and the run still pulls', () => {
    const failure = classifyFailure(new EngineRunError('clock_skew', 'keeps being rejected'));
    expect(failure).toEqual({ kind: 'retry', code: 'clock_skew', message: 'keeps being rejected', retryAfterMs: null });
    expect(pullsAfterPushFailure(failure)).toBe(true);
  });

  it('a busy rescan is retried', () => {
    expect(classifyFailure(new EngineRunError('rescan_busy', 'another tab'))).toMatchObject({ kind: 'retry', code: 'rescan_busy' });
  });

  it('anything else thrown is an internal failure, retried', () => {
    expect(classifyFailure(new Error('boom'))).toEqual({ kind: 'retry', code: 'internal', message: 'boom', retryAfterMs: null });
  });

  it('a refused push ends the run before its pull', () => {
    expect(pullsAfterPushFailure(classifyFailure(provider('forbidden', 403)))).toBe(false);
  });

  it('a run that threw nothing synced; one that threw failed in its phase', () => {
    expect(endOfRun(null)).toEqual({ kind: 'synced' });
    expect(endOfRun({ error: provider('forbidden', 403), phase: 'pull' })).toEqual({
      kind: 'failed',
      phase: 'pull',
      failure: { kind: 'refused', code: 'forbidden', message: 'forbidden' },
    });
  });

  it('the run error code: null when synced, paused when paused, else the failure code', () => {
    expect(runErrorCode({ kind: 'synced' })).toBeNull();
    expect(runErrorCode({ kind: 'paused' })).toBe('paused');
    expect(runErrorCode(endOfRun({ error: provider('store_unavailable', 503), phase: 'push' }))).toBe('store_unavailable');
  });

  it('the scheduler retries failed runs but neither refused nor paused ones', () => {
    expect(retriesAfter(endOfRun({ error: provider('store_unavailable', 503), phase: 'push' }))).toBe(true);
    expect(retriesAfter(endOfRun({ error: provider('network_error', 0), phase: 'pull' }))).toBe(true);
    expect(retriesAfter(endOfRun({ error: provider('forbidden', 403), phase: 'push' }))).toBe(false);
    expect(retriesAfter({ kind: 'paused' })).toBe(false);
    expect(retriesAfter({ kind: 'synced' })).toBe(false);
  });
});
