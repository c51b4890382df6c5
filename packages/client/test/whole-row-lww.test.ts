/**
 * Last-writer-wins replaces the whole row (PROTOCOL.md section 2): what that
 * means for an app, as the READMEs say it, against the real or3-sync binary.
 * A `put` of an object built by the writer carries only the fields it knows;
 * `update()` writes the stored row with its changes, keeping the others.
 */
import { describe, expect, it } from 'vitest';
import type { SyncEngine } from '../src/engine.js';
import { GatewayProvider } from '../src/gateway/gateway-provider.js';
import { makeDevice } from './support/devices.js';
import { gatewayPerFile } from './support/gateway-per-file.js';

const gateway = gatewayPerFile();
const { opened } = gateway;

/** Two devices of one workspace, both holding thread t1 `{ title: 'first', color: 'red' }`. */
async function twoDevicesWithAThread(): Promise<[SyncEngine, SyncEngine]> {
  const token = await gateway.server().token('alice');
  const workspaceId = await gateway.server().createWorkspace(token);
  const open = async () => {
    const provider = new GatewayProvider({ baseUrl: gateway.server().baseUrl, getToken: () => token, WebSocket: null });
    const engine = await makeDevice(workspaceId, provider).open();
    opened.push(engine);
    return engine;
  };
  const a = await open();
  const b = await open();
  await a.db.table('threads').put({ id: 't1', title: 'first', color: 'red' });
  await a.sync();
  await b.sync();
  return [a, b];
}

/** t1 without its sync stamps. */
async function thread(engine: SyncEngine): Promise<Record<string, unknown>> {
  const { id, title, color } = (await engine.db.table('threads').get('t1')) as Record<string, unknown>;
  return { id, title, color };
}

describe('whole-row last-writer-wins', () => {
  it("a put of an object built without a field (an old release's) removes that field everywhere", async () => {
    const [a, b] = await twoDevicesWithAThread();
    await b.db.table('threads').put({ id: 't1', title: 'second' }); // B's release knows no `color`
    await b.sync();
    await a.sync();
    expect(await thread(a)).toEqual({ id: 't1', title: 'second', color: undefined });
  });

  it('update() keeps the fields it does not name, even ones the writer does not know', async () => {
    const [a, b] = await twoDevicesWithAThread();
    await b.db.table('threads').update('t1', { title: 'second' });
    await b.sync();
    await a.sync();
    expect(await thread(a)).toEqual({ id: 't1', title: 'second', color: 'red' });
  });

  it("two devices editing different fields of one row keep one device's whole row", async () => {
    const [a, b] = await twoDevicesWithAThread();
    await a.db.table('threads').update('t1', { title: 'from a' });
    await b.db.table('threads').update('t1', { color: 'blue' });
    await a.sync();
    await b.sync();
    await a.sync();
    const converged = await thread(a);
    expect(await thread(b)).toEqual(converged);
    expect([
      { id: 't1', title: 'from a', color: 'red' },
      { id: 't1', title: 'first', color: 'blue' },
    ]).toContainEqual(converged);
  });
});
