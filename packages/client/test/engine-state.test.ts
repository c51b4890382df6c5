/** `sync.state:action`: leadership and pauses, which no run reports, reach bindings as events. */
import { describe, expect, it } from 'vitest';
import type { EngineStateEvent, ErrorEvent } from '../src/events.js';
import { SyncProviderError } from '../src/provider.js';
import { makeDevice } from './support/devices.js';
import { ScriptedProvider } from './support/scripted-provider.js';

describe('sync.state:action', () => {
  it('fires when the tab starts and stops leading and when the loops pause and resume', async () => {
    const engine = await makeDevice('w1', new ScriptedProvider()).open();
    const seen: EngineStateEvent[] = [];
    engine.on('sync.state:action', (event) => seen.push(event));
    engine.start();
    engine.pause();
    engine.pause(); // no change, no event
    engine.resume();
    await engine.stop();
    expect(seen).toEqual([
      { leader: true, paused: false, pauseReason: null },
      { leader: true, paused: true, pauseReason: { kind: 'app' } },
      { leader: true, paused: false, pauseReason: null },
      { leader: false, paused: false, pauseReason: null },
    ]);
    await engine.close();
  });

  it('pause() is the app pause: its reason is app until resume()', async () => {
    const engine = await makeDevice('w2', new ScriptedProvider()).open();
    expect(engine.pauseReason).toBeNull();
    engine.pause();
    expect(engine.pauseReason).toEqual({ kind: 'app' });
    expect(await engine.sync()).toMatchObject({ error: 'paused' });
    engine.resume();
    expect(engine.pauseReason).toBeNull();
    await engine.close();
  });

  it('a subscription refused by the server pauses the loops as refused, reported in phase subscribe', async () => {
    const provider = new ScriptedProvider();
    const engine = await makeDevice('w3', provider).open();
    const errors: ErrorEvent[] = [];
    engine.on('sync.error:action', (event) => errors.push(event));
    engine.start();
    await waitFor(() => provider.subscriptions.length === 1);
    provider.subscriptions[0]!.onError(new SyncProviderError({ code: 'forbidden', message: 'removed from the workspace', status: 403 }));
    expect(engine.isPaused).toBe(true);
    expect(engine.pauseReason).toEqual({ kind: 'refused', phase: 'subscribe', code: 'forbidden', message: 'removed from the workspace' });
    expect(errors).toEqual([{ phase: 'subscribe', code: 'forbidden', message: 'removed from the workspace', paused: true }]);
    await engine.close();
  });
});

async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
