/** `sync.state:action`: leadership and pauses, which no run reports, reach bindings as events. */
import { describe, expect, it } from 'vitest';
import type { EngineStateEvent } from '../src/events.js';
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
});
