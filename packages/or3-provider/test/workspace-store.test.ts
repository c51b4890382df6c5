/** The `AuthWorkspaceStore` on the real gateway's workspaces and members. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIVE_WORKSPACE_COOKIE, createOr3SyncWorkspaceStore, DEFAULT_WORKSPACE_NAME, userIdOf } from '../src/workspace-store.js';
import { eventFor, startGateway, type TestGateway } from './support/gateway.js';

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startGateway();
});
afterAll(() => gateway?.stop());

/** A store for a request carrying `cookie` (OR3 passes the event to the store's factory). */
function storeWith(cookie?: string) {
  const event = eventFor('unused');
  if (cookie) event.node.req.headers.cookie = `${ACTIVE_WORKSPACE_COOKIE}=${cookie}`;
  return { store: createOr3SyncWorkspaceStore(gateway.client, event), event };
}
const setCookieOf = (event: ReturnType<typeof eventFor>) => String(event.node.res.getHeader('set-cookie') ?? '');

describe('workspace store', () => {
  it('a user is the auth provider and its user id, without storage', async () => {
    const { store } = storeWith();
    expect(await store.getOrCreateUser({ provider: 'clerk', providerUserId: 'user_1' })).toEqual({ userId: 'clerk:user_1' });
    expect(() => userIdOf('clerk', '')).toThrow(/providerUserId/);
  });

  it('the first sign-in creates a default workspace owned by the user; later ones find it', async () => {
    const { store } = storeWith();
    const first = await store.getOrCreateDefaultWorkspace('test:new-user');
    expect(first).toMatchObject({ workspaceName: DEFAULT_WORKSPACE_NAME, created: true });
    expect(await store.getOrCreateDefaultWorkspace('test:new-user')).toEqual({ ...first, created: false });
    expect(await store.getWorkspaceRole({ userId: 'test:new-user', workspaceId: first.workspaceId })).toBe('owner');
  });

  it('parallel first requests of one user make one default workspace, not one each', async () => {
    const user = 'test:parallel-first-sign-in';
    const answers = await Promise.all([0, 1, 2, 3].map(() => storeWith().store.getOrCreateDefaultWorkspace(user)));
    expect(new Set(answers.map((a) => a.workspaceId)).size).toBe(1);
    expect(answers.filter((a) => a.created)).toHaveLength(1);
    expect(await storeWith().store.listUserWorkspaces(user)).toHaveLength(1);
  });

  it('create, list, rename and remove workspaces; a non-member has no role', async () => {
    const { store } = storeWith();
    const user = 'test:organizer';
    const { workspaceId } = await store.createWorkspace({ userId: user, name: 'Team' });
    await store.updateWorkspace({ userId: user, workspaceId, name: 'Team renamed' });
    expect(await store.listUserWorkspaces(user)).toEqual([{ id: workspaceId, name: 'Team renamed', role: 'owner', isActive: true }]);
    expect(await store.getWorkspaceRole({ userId: 'test:stranger', workspaceId })).toBeNull();
    await store.removeWorkspace({ userId: user, workspaceId });
    expect(await store.listUserWorkspaces(user)).toEqual([]);
    expect(await store.getWorkspaceRole({ userId: user, workspaceId })).toBeNull();
  });

  it('only an owner may rename or remove (403 UNAUTHORIZED)', async () => {
    const { store } = storeWith();
    const { workspaceId } = await store.createWorkspace({ userId: 'test:boss', name: 'Boss' });
    await gateway.client.request({ method: 'PUT', path: `/v1/workspaces/${workspaceId}/members/test:helper`, userId: 'test:boss', body: { role: 'editor' } });
    expect(await store.getWorkspaceRole({ userId: 'test:helper', workspaceId })).toBe('editor');
    await expect(store.updateWorkspace({ userId: 'test:helper', workspaceId, name: 'mine' })).rejects.toMatchObject({ statusCode: 403, data: { code: 'UNAUTHORIZED' } });
    await expect(store.removeWorkspace({ userId: 'test:helper', workspaceId })).rejects.toMatchObject({ statusCode: 403 });
  });

  it('the active workspace is the cookie set by setActiveWorkspace, checked against membership', async () => {
    const user = 'test:switcher';
    const { store, event } = storeWith();
    const a = await store.getOrCreateDefaultWorkspace(user);
    const b = await store.createWorkspace({ userId: user, name: 'Second' });
    await store.setActiveWorkspace({ userId: user, workspaceId: b.workspaceId });
    expect(setCookieOf(event)).toContain(`${ACTIVE_WORKSPACE_COOKIE}=${b.workspaceId}`);
    expect(setCookieOf(event)).toContain('HttpOnly');

    const next = storeWith(b.workspaceId).store; // the next request carries the cookie
    expect((await next.getOrCreateDefaultWorkspace(user)).workspaceId).toBe(b.workspaceId);
    expect((await next.listUserWorkspaces(user)).filter((w) => w.isActive).map((w) => w.id)).toEqual([b.workspaceId]);
    // A cookie naming a workspace the user is not in falls back to the first one.
    const stranger = await storeWith().store.createWorkspace({ userId: 'test:other', name: 'x' });
    expect((await storeWith(stranger.workspaceId).store.getOrCreateDefaultWorkspace(user)).workspaceId).toBe(a.workspaceId);
    await expect(store.setActiveWorkspace({ userId: user, workspaceId: stranger.workspaceId })).rejects.toMatchObject({ statusCode: 403 });
  });
});
