/**
 * A stand-in for OR3 Chat's server, on h3 directly (a full Nuxt build of a
 * fixture app would take minutes on the CI machines): registries shaped like
 * OR3's (providers register by id; the active adapter is the configured
 * `sync.provider`; the workspace store is looked up by that same id and made
 * per request), a session resolved through the workspace store as OR3's
 * `resolveSessionContext` does (the signed-in user comes from an
 * `x-test-user` header instead of a cookie), and `/api/sync/*` routes that
 * check the role and hand the body to the adapter, plus the module's
 * realtime-token route.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, createError, createRouter, defineEventHandler, getHeader, readBody, toNodeListener, type H3Event } from 'h3';
import type { AuthWorkspaceStore, Or3ServerRegistries, SyncGatewayAdapter, SyncScope } from '../../src/or3-types.js';
import { registerOr3Sync } from '../../src/registration.js';
import { createRealtimeTokenHandler, REALTIME_TOKEN_ROUTE } from '../../src/realtime-token.js';
import type { GatewayClient } from '../../src/gateway-client.js';

type AdapterItem = Parameters<Or3ServerRegistries<H3Event>['registerSyncGatewayAdapter']>[0];
type StoreItem = Parameters<Or3ServerRegistries<H3Event>['registerAuthWorkspaceStore']>[0];

export interface Or3Host {
  baseUrl: string;
  /** What was registered, by id. */
  adapterIds(): string[];
  storeIds(): string[];
  /** The headers that sign `user` in. */
  as(user: string): Record<string, string>;
  stop(): Promise<void>;
}

interface Session {
  userId: string;
  workspaceId: string;
  store: AuthWorkspaceStore;
}

/** Starts the host with `providerId` configured (OR3's `OR3_SYNC_PROVIDER`). */
export async function startOr3Host(client: GatewayClient, providerId = 'or3sync'): Promise<Or3Host> {
  const adapters = new Map<string, AdapterItem>();
  const stores = new Map<string, StoreItem>();
  const registries: Or3ServerRegistries<H3Event> = {
    registerSyncGatewayAdapter: (item) => void adapters.set(item.id, item),
    registerAuthWorkspaceStore: (item) => void stores.set(item.id, item),
  };

  const session = async (event: H3Event): Promise<Session> => {
    const cached = event.context.session as Session | undefined;
    if (cached) return cached;
    const providerUserId = getHeader(event, 'x-test-user');
    if (!providerUserId) throw createError({ statusCode: 401, statusMessage: 'Unauthorized' });
    const store = stores.get(providerId)?.create(event);
    if (!store) throw new Error(`no AuthWorkspaceStore registered for ${providerId}`);
    const { userId } = await store.getOrCreateUser({ provider: 'test', providerUserId });
    const { workspaceId } = await store.getOrCreateDefaultWorkspace(userId);
    event.context.session = { userId, workspaceId, store };
    return event.context.session as Session;
  };
  const userOf = async (event: H3Event) => (await session(event)).userId;

  registerOr3Sync(registries, { client: () => client, userOf });

  let adapter: SyncGatewayAdapter<H3Event> | undefined;
  const activeAdapter = () => (adapter ??= adapters.get(providerId)?.create());

  /** One `/api/sync/*` route: session, OR3's `workspace.read`/`workspace.write` check, then the adapter. */
  const syncRoute = (write: boolean, call: (a: SyncGatewayAdapter<H3Event>, event: H3Event, body: never) => Promise<unknown>) =>
    defineEventHandler(async (event) => {
      const body = await readBody<{ scope: SyncScope }>(event);
      const { userId, store } = await session(event);
      const role = await store.getWorkspaceRole({ userId, workspaceId: body.scope.workspaceId });
      if (!role || (write && role === 'viewer')) throw createError({ statusCode: 403, statusMessage: 'Forbidden' });
      const active = activeAdapter();
      if (!active) throw createError({ statusCode: 500, statusMessage: 'Sync adapter not configured' });
      return (await call(active, event, body as never)) ?? { ok: true };
    });

  const router = createRouter()
    .post('/api/sync/pull', syncRoute(false, (a, e, b) => a.pull(e, b)))
    .post('/api/sync/snapshot', syncRoute(false, (a, e, b) => a.snapshot!(e, b)))
    .post('/api/sync/push', syncRoute(true, (a, e, b) => a.push(e, b)))
    .post('/api/sync/update-cursor', syncRoute(false, (a, e, b) => a.updateCursor(e, b)))
    .post('/api/sync/gc-tombstones', syncRoute(true, (a, e, b) => a.gcTombstones!(e, b)))
    .post('/api/sync/gc-change-log', syncRoute(true, (a, e, b) => a.gcChangeLog!(e, b)))
    .get('/api/session', defineEventHandler(async (event) => {
      const { userId, workspaceId } = await session(event);
      return { userId, workspaceId };
    }))
    .get(REALTIME_TOKEN_ROUTE, createRealtimeTokenHandler(() => client, userOf));
  const app = createApp();
  app.use(router);

  const server = createServer(toNodeListener(app));
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    adapterIds: () => [...adapters.keys()],
    storeIds: () => [...stores.keys()],
    as: (user) => ({ 'x-test-user': user }),
    stop: () =>
      new Promise((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
