/**
 * `GatewayProvider`'s typed calls beside sync, against the real or3-sync
 * binary: what the server syncs (`describeServer`), and workspaces and
 * members, with the server's error codes as `SyncProviderError`s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayProvider } from '../src/gateway/gateway-provider.js';
import { SyncProviderError } from '../src/provider.js';
import { startServer, type TestServer } from './support/server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startServer(['--tables', 'tags,notes:noteId', '--max-ops-per-push', '40']);
});
afterAll(async () => {
  await server?.stop();
});

async function providerOf(userId: string): Promise<GatewayProvider> {
  const token = await server.token(userId);
  return new GatewayProvider({ baseUrl: server.baseUrl, getToken: () => token });
}

/** The `SyncProviderError` that `call` rejects with. */
async function failureOf(call: Promise<unknown>): Promise<SyncProviderError> {
  const error = await call.then(
    () => null,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(SyncProviderError);
  return error as SyncProviderError;
}

describe('describeServer', () => {
  it('returns the tables the server syncs with their primary key fields, and its push limits', async () => {
    const provider = await providerOf('alice');
    expect(await provider.describeServer()).toEqual({
      tables: [
        { name: 'notes', primaryKey: 'noteId' },
        { name: 'tags', primaryKey: 'id' },
      ],
      maxOpsPerPush: 40,
      maxPayloadBytes: 1024 * 1024,
    });
  });

  it('fails with the wire code when the token is refused', async () => {
    const provider = new GatewayProvider({ baseUrl: server.baseUrl, getToken: () => 'not-a-jwt' });
    const error = await failureOf(provider.describeServer());
    expect(error.status).toBe(401);
    expect(error.code).toBe('invalid_token');
  });
});

describe('workspaces and members', () => {
  it('a created workspace is listed with the caller as its owner', async () => {
    const carol = await providerOf('carol');
    const created = await carol.createWorkspace('Team notes');
    expect(created).toEqual({ workspaceId: expect.any(String), name: 'Team notes', role: 'owner' });
    expect(await carol.listWorkspaces()).toEqual([created]);
  });

  it('an invited member sees the workspace with their role until removed', async () => {
    const alice = await providerOf('alice');
    const bob = await providerOf('bob');
    const { workspaceId } = await alice.createWorkspace('Shared');
    expect(await alice.setMemberRole(workspaceId, 'bob', 'editor')).toEqual({ workspaceId, userId: 'bob', role: 'editor' });
    expect(await bob.listWorkspaces()).toContainEqual({ workspaceId, name: 'Shared', role: 'editor' });
    await alice.setMemberRole(workspaceId, 'bob', 'viewer');
    expect(await bob.listWorkspaces()).toContainEqual({ workspaceId, name: 'Shared', role: 'viewer' });
    await alice.removeMember(workspaceId, 'bob');
    expect((await bob.listWorkspaces()).map((w) => w.workspaceId)).not.toContain(workspaceId);
  });

  it('errors carry the wire code: a non-owner managing members, the last owner leaving, a bad name', async () => {
    const alice = await providerOf('alice');
    const dave = await providerOf('dave');
    const { workspaceId } = await alice.createWorkspace('Codes');
    await alice.setMemberRole(workspaceId, 'dave', 'editor');
    const forbidden = await failureOf(dave.setMemberRole(workspaceId, 'erin', 'editor'));
    expect([forbidden.status, forbidden.code]).toEqual([403, 'forbidden']);
    const lastOwner = await failureOf(alice.removeMember(workspaceId, 'alice'));
    expect([lastOwner.status, lastOwner.code]).toEqual([409, 'last_owner']);
    const badName = await failureOf(alice.createWorkspace('   '));
    expect([badName.status, badName.code, badName.field]).toEqual([400, 'invalid_name', 'name']);
  });
});
