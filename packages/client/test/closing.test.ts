/** Closing raises no uncaught error, in any state (PROTOCOL.md section 6, "Closing"); Chromium checks the page (`chromium-close.test.ts`). */
import { describe, expect, it } from 'vitest';
import { openTabChannel } from '../src/leader.js';
import { makeDevice } from './support/devices.js';
import { ScriptedProvider } from './support/scripted-provider.js';

describe('the tab channel', () => {
  it('ignores a write committed after close (a put not awaited before close) and closes twice', () => {
    const channel = openTabChannel('or3-sync:closing-test', { captured: () => {}, owner: () => {} });
    channel.close();
    expect(() => channel.notifyCaptured()).not.toThrow();
    expect(() => channel.close()).not.toThrow();
  });
});

describe('an engine with the tab channel on', () => {
  it('closes with a write in flight, never started, and closes again', async () => {
    const engine = await makeDevice('ws-close', new ScriptedProvider()).open({ broadcast: true });
    const write = engine.db.table('threads').put({ id: 't1', title: 'in flight' });
    await engine.close();
    await write.catch(() => {});
    await expect(engine.close()).resolves.toBeUndefined();
  });
});
