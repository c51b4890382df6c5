/**
 * The provider inside an OR3-shaped host (h3, OR3's registries and
 * `/api/sync/*` routes), called through those routes by the browser provider
 * as OR3's engine calls them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createOr3SyncRealtimeProvider } from '../src/client/realtime-provider.js';
import { Or3RouteError } from '../src/client/or3-routes.js';
import { registerOr3Sync } from '../src/registration.js';
import type { SyncProvider } from '../src/or3-types.js';
import { startGateway, testUserOf, type TestGateway } from './support/gateway.js';
import { startOr3Host, type Or3Host } from './support/or3-host.js';
import { Or3Device } from './support/or3-device.js';

let gateway: TestGateway;
let host: Or3Host;

const providerFor = (baseUrl: string, headers: Record<string, string>): SyncProvider =>
  createOr3SyncRealtimeProvider({ baseUrl, headers, openSocket: (url, protocols) => new WebSocket(url, protocols) });

async function sessionOf(user: string): Promise<{ userId: string; workspaceId: string }> {
  const response = await fetch(`${host.baseUrl}/api/session`, { headers: host.as(user) });
  return (await response.json()) as { userId: string; workspaceId: string };
}

beforeAll(async () => {
  gateway = await startGateway();
  host = await startOr3Host(gateway.client);
});
afterAll(async () => {
  await host?.stop();
  await gateway?.stop();
});

describe('registration', () => {
  it('registers the adapter and the workspace store under or3sync before any await', () => {
    const ids: string[] = [];
    const record = (item: { id: string }) => void ids.push(item.id);
    registerOr3Sync({ registerSyncGatewayAdapter: record, registerAuthWorkspaceStore: record }, { client: () => gateway.client, userOf: testUserOf });
    expect(ids).toEqual(['or3sync', 'or3sync']);
    expect(host.adapterIds()).toEqual(['or3sync']);
    expect(host.storeIds()).toEqual(['or3sync']);
  });
});

describe('through /api/sync/*', () => {
  it('a first sign-in gets a default workspace, the same one on the next request', async () => {
    const first = await sessionOf('alice');
    expect(first.userId).toBe('test:alice');
    expect(await sessionOf('alice')).toEqual(first);
    expect(first.workspaceId).not.toBe((await sessionOf('bob')).workspaceId);
  });

  it('a write pushed by one device is pulled by another, with OR3 stamps', async () => {
    const { workspaceId } = await sessionOf('carol');
    const [a, b] = [providerFor(host.baseUrl, host.as('carol')), providerFor(host.baseUrl, host.as('carol'))];
    const device = new Or3Device();
    const op = device.write('messages', 'm1', { id: 'm1', thread_id: 't1', text: 'hello' });
    const pushed = await a.push({ scope: { workspaceId }, ops: [op] });
    expect(pushed.results[0]).toMatchObject({ success: true, applied: true });
    const page = await b.pull({ scope: { workspaceId }, cursor: 0, limit: 100 });
    expect(page.changes.map((c) => [c.pk, c.stamp])).toEqual([['m1', op.stamp]]);
    const snapshot = await b.snapshot!({ scope: { workspaceId }, pageSize: 100 });
    expect(snapshot.items).toMatchObject([{ kind: 'row', pk: 'm1', payload: { text: 'hello' } }]);
    await b.updateCursor({ workspaceId }, new Or3Device().deviceId, page.nextCursor);
  });

  it("another user's workspace is refused (403)", async () => {
    const { workspaceId } = await sessionOf('dave');
    const error = await providerFor(host.baseUrl, host.as('eve'))
      .pull({ scope: { workspaceId }, cursor: 0, limit: 10 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Or3RouteError);
    expect((error as Or3RouteError).status).toBe(403);
  });
});
