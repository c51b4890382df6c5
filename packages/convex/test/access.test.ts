/** Identity, membership and roles, checked by every function. */
import { afterEach, describe, expect, test } from 'vitest';
import { api } from '../convex/_generated/api.js';
import { ENV } from '../convex/lib/config.js';
import { toSyncProviderError } from '../src/provider-errors.js';
import { as, errorOf, newBackend, put, workspaceWith } from './setup.js';

afterEach(() => {
  delete process.env[ENV.membershipFromClaims];
});

function everyFunction(workspace: string) {
  return {
    push: { ref: api.sync.push, args: { workspace_id: workspace, ops: [put('kv', 'k')] }, kind: 'mutation' },
    pull: { ref: api.sync.pull, args: { workspace_id: workspace, cursor: 0 }, kind: 'query' },
    watchChanges: { ref: api.sync.watchChanges, args: { workspace_id: workspace, cursor: 0 }, kind: 'query' },
    snapshot: { ref: api.sync.snapshot, args: { workspace_id: workspace }, kind: 'query' },
    getRecord: { ref: api.sync.getRecord, args: { workspace_id: workspace, table_name: 'kv', pk: 'k' }, kind: 'query' },
    ackCursor: {
      ref: api.sync.ackCursor,
      args: { workspace_id: workspace, device_id: '9f2c4e1ab37d5e60', cursor: 0 },
      kind: 'mutation',
    },
    listMembers: { ref: api.workspaces.listMembers, args: { workspace_id: workspace }, kind: 'query' },
  } as const;
}

/** Anything that runs functions: the backend itself or one seen through an identity. */
type Caller = Pick<ReturnType<typeof newBackend>, 'query' | 'mutation'>;

async function call(caller: Caller, fn: { ref: unknown; args: unknown; kind: 'query' | 'mutation' }) {
  // Each entry pairs a reference with its own arguments; the union defeats inference.
  const run = caller[fn.kind] as (ref: unknown, args: unknown) => Promise<unknown>;
  return run(fn.ref, fn.args);
}

describe('identity', () => {
  test('a caller with no identity is refused everywhere with unauthorized', async () => {
    const t = newBackend();
    const workspace = await workspaceWith(t, 'alice');
    for (const fn of Object.values(everyFunction(workspace))) {
      expect(await errorOf(call(t, fn))).toMatchObject({ code: 'unauthorized' });
    }
    expect(await errorOf(t.mutation(api.workspaces.createWorkspace, { name: 'x' }))).toMatchObject({
      code: 'unauthorized',
    });
    expect(await errorOf(t.query(api.workspaces.listWorkspaces, {}))).toMatchObject({ code: 'unauthorized' });
  });
});

describe('membership', () => {
  test('a non-member is refused everywhere with forbidden', async () => {
    const t = newBackend();
    const workspace = await workspaceWith(t, 'alice');
    for (const fn of Object.values(everyFunction(workspace))) {
      expect(await errorOf(call(as(t, 'mallory'), fn))).toMatchObject({ code: 'forbidden' });
    }
  });

  test('an unknown workspace is unknown_workspace everywhere', async () => {
    const t = newBackend();
    for (const fn of Object.values(everyFunction('no-such-workspace'))) {
      expect(await errorOf(call(as(t, 'alice'), fn))).toMatchObject({ code: 'unknown_workspace' });
    }
  });

  test('a viewer may read but not push', async () => {
    const t = newBackend();
    const workspace = await workspaceWith(t, 'alice', { vic: 'viewer' });
    const fns = everyFunction(workspace);
    expect(await errorOf(call(as(t, 'vic'), fns.push))).toMatchObject({ code: 'forbidden' });
    for (const name of ['pull', 'watchChanges', 'snapshot', 'getRecord', 'ackCursor', 'listMembers'] as const) {
      await call(as(t, 'vic'), fns[name]); // throws if refused
    }
    expect((await as(t, 'vic').query(api.sync.pull, { workspace_id: workspace, cursor: 0 })).changes).toEqual([]);
  });

  test('an editor may push but not manage members', async () => {
    const t = newBackend();
    const workspace = await workspaceWith(t, 'alice', { ed: 'editor' });
    const response = await as(t, 'ed').mutation(api.sync.push, { workspace_id: workspace, ops: [put('kv', 'k')] });
    expect(response.results[0]?.status).toBe('applied');
    expect(
      await errorOf(as(t, 'ed').mutation(api.workspaces.setMember, { workspace_id: workspace, user_id: 'x', role: 'editor' })),
    ).toMatchObject({ code: 'forbidden' });
  });

  test('a removed member loses access at once', async () => {
    const t = newBackend();
    const workspace = await workspaceWith(t, 'alice', { bob: 'editor' });
    await as(t, 'alice').mutation(api.workspaces.removeMember, { workspace_id: workspace, user_id: 'bob' });
    expect(
      await errorOf(as(t, 'bob').query(api.sync.pull, { workspace_id: workspace, cursor: 0 })),
    ).toMatchObject({ code: 'forbidden' });
  });
});

describe('workspace management', () => {
  test('the creator owns the workspace, and each user lists their own workspaces with roles', async () => {
    const t = newBackend();
    const created = await as(t, 'alice').mutation(api.workspaces.createWorkspace, { name: ' Team ' });
    expect(created).toMatchObject({ name: 'Team', role: 'owner' });
    await as(t, 'alice').mutation(api.workspaces.setMember, {
      workspace_id: created.workspace_id,
      user_id: 'bob',
      role: 'viewer',
    });
    expect(await as(t, 'bob').query(api.workspaces.listWorkspaces, {})).toEqual({
      workspaces: [{ workspace_id: created.workspace_id, name: 'Team', role: 'viewer' }],
    });
    expect((await as(t, 'carol').query(api.workspaces.listWorkspaces, {})).workspaces).toEqual([]);
    const members = await as(t, 'bob').query(api.workspaces.listMembers, { workspace_id: created.workspace_id });
    expect(members.members).toEqual(
      expect.arrayContaining([
        { user_id: 'alice', role: 'owner' },
        { user_id: 'bob', role: 'viewer' },
      ]),
    );
  });

  test('a workspace always keeps at least one owner', async () => {
    const t = newBackend();
    const workspace = await workspaceWith(t, 'alice');
    const alice = as(t, 'alice');
    expect(
      await errorOf(alice.mutation(api.workspaces.setMember, { workspace_id: workspace, user_id: 'alice', role: 'editor' })),
    ).toMatchObject({ code: 'last_owner' });
    expect(
      await errorOf(alice.mutation(api.workspaces.removeMember, { workspace_id: workspace, user_id: 'alice' })),
    ).toMatchObject({ code: 'last_owner' });
    await alice.mutation(api.workspaces.setMember, { workspace_id: workspace, user_id: 'bob', role: 'owner' });
    await alice.mutation(api.workspaces.setMember, { workspace_id: workspace, user_id: 'alice', role: 'viewer' });
    expect(
      await errorOf(alice.mutation(api.sync.push, { workspace_id: workspace, ops: [put('kv', 'k')] })),
    ).toMatchObject({ code: 'forbidden' });
  });

  test('removing a non-member is not_found; an empty name is invalid_input', async () => {
    const t = newBackend();
    const workspace = await workspaceWith(t, 'alice');
    expect(
      await errorOf(as(t, 'alice').mutation(api.workspaces.removeMember, { workspace_id: workspace, user_id: 'nobody' })),
    ).toMatchObject({ code: 'not_found' });
    expect(await errorOf(as(t, 'alice').mutation(api.workspaces.createWorkspace, { name: '   ' }))).toMatchObject({
      code: 'invalid_input',
    });
  });
});

describe('membership from Clerk organization claims', () => {
  test('org_id names the workspace and org_role gives the role', async () => {
    process.env[ENV.membershipFromClaims] = 'true';
    const t = newBackend();
    const org = 'org_2abc';
    const admin = t.withIdentity({ subject: 'alice', org_id: org, org_role: 'org:admin' });
    const member = t.withIdentity({ subject: 'bob', org_id: org, org_role: 'org:member' });
    const guest = t.withIdentity({ subject: 'carol', org_id: org, org_role: 'org:guest' });
    const outsider = t.withIdentity({ subject: 'dave', org_id: 'org_other', org_role: 'org:admin' });
    expect((await member.mutation(api.sync.push, { workspace_id: org, ops: [put('kv', 'k')] })).results[0]?.status).toBe(
      'applied',
    );
    expect(
      await errorOf(guest.mutation(api.sync.push, { workspace_id: org, ops: [put('kv', 'k2')] })),
    ).toMatchObject({ code: 'forbidden' });
    expect((await guest.query(api.sync.pull, { workspace_id: org, cursor: 0 })).changes).toHaveLength(1);
    expect(await errorOf(outsider.query(api.sync.pull, { workspace_id: org, cursor: 0 }))).toMatchObject({
      code: 'forbidden',
    });
    expect(await admin.query(api.workspaces.listMembers, { workspace_id: org })).toEqual({ members: [] });
  });
});

describe('the gateway\'s codes (docs/ERRORS.md, "Convex")', () => {
  /** What the provider hands the engine for a call: the code and the gateway's status. */
  async function answer(promise: Promise<unknown>) {
    const error = toSyncProviderError(await promise.then(() => null, (e: unknown) => e));
    return { code: error.code, status: error.status };
  }

  test('an unknown workspace is 404 unknown_workspace', async () => {
    const t = newBackend();
    const fn = everyFunction('no-such-workspace').push;
    expect(await answer(call(as(t, 'alice'), fn))).toEqual({ code: 'unknown_workspace', status: 404 });
  });

  test('a non-member is 403 forbidden', async () => {
    const t = newBackend();
    const workspace = await workspaceWith(t, 'alice');
    expect(await answer(call(as(t, 'mallory'), everyFunction(workspace).pull))).toEqual({ code: 'forbidden', status: 403 });
  });

  test('a viewer pushing is 403 forbidden', async () => {
    const t = newBackend();
    const workspace = await workspaceWith(t, 'alice', { vic: 'viewer' });
    expect(await answer(call(as(t, 'vic'), everyFunction(workspace).push))).toEqual({ code: 'forbidden', status: 403 });
  });

  test('a call the deployment failed is 503 store_unavailable', async () => {
    expect(await answer(Promise.reject(new Error('Connection lost while action was in flight')))).toEqual({
      code: 'store_unavailable',
      status: 503,
    });
  });
});
