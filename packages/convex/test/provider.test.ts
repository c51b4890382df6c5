/** ConvexSyncProvider over the real functions (convex-test), through the transport adapter. */
import { isSyncProviderError, type ChangesBatch, type SyncProviderError, type SyncScope } from '@or3/sync-client';
import type { ConvexClient } from 'convex/browser';
import { describe, expect, expectTypeOf, test, vi } from 'vitest';
import { api, internal } from '../convex/_generated/api.js';
import {
  CONVEX_MAX_PAYLOAD_BYTES,
  ConvexSyncProvider,
  clerkTokenBroker,
  type AuthTokenBroker,
  type ConvexTransport,
} from '../src/index.js';
import { DEVICE_A, DEVICE_B, as, del, put, workspaceWith } from './setup.js';
import { TestDeployment } from './support/convex-test-transport.js';

/** A broker that signs in as `userId` and records what it was asked. */
function brokerFor(userId: string | null) {
  const asked: boolean[] = [];
  const broker: AuthTokenBroker = {
    getToken: async ({ forceRefresh }) => {
      asked.push(forceRefresh);
      return userId === null ? null : `user:${userId}`;
    },
  };
  return { broker, asked };
}

async function setup(userId = 'alice') {
  const deployment = new TestDeployment();
  const workspace = await workspaceWith(deployment.backend, 'alice', { vic: 'viewer', bob: 'editor' });
  const transport = deployment.connect();
  const { broker, asked } = brokerFor(userId);
  const provider = new ConvexSyncProvider({ client: transport, tokenBroker: broker });
  const scope: SyncScope = { workspaceId: workspace, deviceId: DEVICE_A };
  return { deployment, workspace, transport, provider, scope, asked };
}

async function providerError(call: Promise<unknown>): Promise<SyncProviderError> {
  try {
    await call;
  } catch (error) {
    if (isSyncProviderError(error)) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function devicePositions(deployment: TestDeployment, workspace: string) {
  return deployment.backend.run(async (ctx) =>
    (await ctx.db.query('device_cursors').withIndex('by_device', (q) => q.eq('workspace_id', workspace)).collect()).map(
      (d) => [d.device_id, d.cursor],
    ),
  );
}

describe('shape', () => {
  test('direct mode, with the payload limit of the Convex backend', async () => {
    const { provider } = await setup();
    expect(provider.mode).toBe('direct');
    expect(provider.maxPayloadBytes).toBe(CONVEX_MAX_PAYLOAD_BYTES);
    expect(new ConvexSyncProvider({ client: (await setup()).transport, maxPayloadBytes: 1000 }).maxPayloadBytes).toBe(1000);
    expect(
      new ConvexSyncProvider({ client: (await setup()).transport, maxPayloadBytes: 10 * CONVEX_MAX_PAYLOAD_BYTES })
        .maxPayloadBytes,
    ).toBe(CONVEX_MAX_PAYLOAD_BYTES);
  });

  test("Convex's own ConvexClient is a ConvexTransport", () => {
    expectTypeOf<ConvexClient>().toMatchTypeOf<ConvexTransport>();
  });
});

describe('auth', () => {
  test('the broker supplies the identity; Convex asks for a forced refresh after a refused token', async () => {
    const { provider, transport, scope, asked } = await setup();
    await provider.push(scope, [put('kv', 'k')]);
    expect(asked).toEqual([false]);
    transport.forceRefreshNext = true;
    await provider.pull(scope, 0);
    await provider.flushAcks();
    expect(asked.filter((forced) => forced)).toHaveLength(1);
  });

  test('signed out: every call is a 401 unauthorized', async () => {
    const { provider, scope } = await setup();
    const signedOut = new ConvexSyncProvider({ client: (await setup()).deployment.connect(), tokenBroker: brokerFor(null).broker });
    for (const call of [signedOut.push(scope, [put('kv', 'k')]), signedOut.pull(scope, 0), signedOut.snapshot(scope, null)]) {
      expect(await providerError(call)).toMatchObject({ code: 'unauthorized', status: 401 });
    }
    expect(provider.mode).toBe('direct');
  });

  test('clerkTokenBroker asks Clerk for the convex template, skipping its cache on a forced refresh', async () => {
    const getToken = vi.fn(async (_options: { template?: string; skipCache?: boolean }) => 'jwt');
    const broker = clerkTokenBroker({ getToken });
    expect(await broker.getToken({ forceRefresh: false })).toBe('jwt');
    expect(await broker.getToken({ forceRefresh: true })).toBe('jwt');
    expect(getToken.mock.calls.map((call) => call[0])).toEqual([
      { template: 'convex', skipCache: false },
      { template: 'convex', skipCache: true },
    ]);
  });

  test('a viewer pushing gets 403 forbidden', async () => {
    const deployment = new TestDeployment();
    const workspace = await workspaceWith(deployment.backend, 'alice', { vic: 'viewer' });
    const provider = new ConvexSyncProvider({ client: deployment.connect(), tokenBroker: brokerFor('vic').broker });
    const error = await providerError(provider.push({ workspaceId: workspace }, [put('kv', 'k')]));
    expect(error).toMatchObject({ code: 'forbidden', status: 403 });
    expect(error.retryable).toBe(false);
  });
});

describe('push', () => {
  test('answers one wire result per op, in order, as the gateway does', async () => {
    const { provider, scope } = await setup();
    const ops = [put('kv', 'a', {}, { clock: 2 }), put('kv', 'a', {}, { clock: 1 }), { ...put('kv', 'b'), pk: '' }];
    const response = await provider.push(scope, ops);
    expect(response.results.map((r) => [r.op_id, r.status])).toEqual([
      [ops[0]!.op_id, 'applied'],
      [ops[1]!.op_id, 'superseded'],
      [ops[2]!.op_id, 'rejected'],
    ]);
    expect(response.server_version).toBe(1);
    expect(typeof response.server_time).toBe('number');
  });

  test('ops Convex could not carry are rejected locally, the rest are pushed', async () => {
    const { deployment, provider, scope } = await setup();
    const dollar = put('kv', 'a', { $ref: 'x' });
    const huge = put('messages', 'm', { data: 'x'.repeat(CONVEX_MAX_PAYLOAD_BYTES) });
    const longArray = put('posts', 'p', { tags: new Array<number>(9000).fill(0) });
    const good = put('kv', 'b');
    const response = await provider.push(scope, [dollar, good, huge, longArray]);
    expect(response.results.map((r) => (r.status === 'rejected' ? r.error.code : r.status))).toEqual([
      'invalid_op',
      'applied',
      'payload_too_large',
      'payload_too_large',
    ]);
    const sent = deployment.calls.filter((c) => c.kind === 'mutation' && Array.isArray(c.args.ops));
    expect(sent.map((c) => (c.args.ops as Array<{ pk: string }>).map((op) => op.pk))).toEqual([['b']]);
  });

  test('a batch too large for one Convex transaction is split, never truncated', async () => {
    const { deployment, provider, scope } = await setup();
    const text = 'y'.repeat(950 * 1024);
    const big = Array.from({ length: 9 }, (_, i) => put('messages', `m${i}`, { data: text }, { clock: 5 }));
    const first = await provider.push(scope, big);
    expect(first.results.every((r) => r.status === 'applied')).toBe(true);
    const pushes = () => deployment.calls.filter((c) => c.kind === 'mutation' && Array.isArray(c.args.ops)).length;
    expect(pushes()).toBeGreaterThan(1);

    // Nine stale ops answered by nine big winners overflow one answer: the server refuses, the provider halves.
    const before = pushes();
    const stale = big.map((op) => put('messages', op.pk, {}, { clock: 1 }));
    const response = await provider.push(scope, stale);
    expect(response.results.map((r) => r.status)).toEqual(new Array(9).fill('superseded'));
    expect(response.results.map((r) => r.op_id)).toEqual(stale.map((op) => op.op_id));
    expect(response.results.every((r) => r.status === 'superseded' && r.winner.payload?.data === text)).toBe(true);
    expect(pushes() - before).toBeGreaterThan(2);
  });
});

describe('pull, snapshot and positions', () => {
  test('pull answers the changes and reports the cursor it was given as applied', async () => {
    const { deployment, workspace, provider, scope } = await setup();
    await provider.push(scope, [put('kv', 'a'), put('kv', 'b'), del('kv', 'a')]);
    const page = await provider.pull(scope, 0, 2);
    expect(page).toMatchObject({ cursor: 2, has_more: true });
    expect(page.changes.map((c) => c.pk)).toEqual(['a', 'b']);
    await provider.pull(scope, 2);
    await provider.flushAcks();
    expect(await devicePositions(deployment, workspace)).toEqual([[DEVICE_A, 2]]);
  });

  test('a snapshot registers its version as the device position', async () => {
    const { deployment, workspace, provider, scope } = await setup();
    await provider.push(scope, [put('kv', 'a'), put('threads', 't')]);
    const page = await provider.snapshot({ ...scope, deviceId: DEVICE_B }, null);
    expect(page.items.map((i) => i.pk)).toEqual(['a', 't']);
    await provider.flushAcks();
    expect(await devicePositions(deployment, workspace)).toEqual([[DEVICE_B, 2]]);
    expect(await provider.getRecord(scope, 'kv', 'a')).toMatchObject({ pk: 'a', server_version: 1 });
    expect(await provider.getRecord(scope, 'kv', 'zzz')).toBeNull();
  });

  test('an expired cursor is a 410 with the oldest retained version', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.UTC(2026, 0, 1) });
    try {
      const { deployment, workspace, provider, scope } = await setup();
      await provider.push(scope, [put('kv', 'a', {}, { ms: Date.now() - 1000 }), put('kv', 'b', {}, { ms: Date.now() - 1000 })]);
      vi.setSystemTime(Date.UTC(2026, 0, 10));
      await deployment.backend.mutation(internal.gc.collect, { workspace_id: workspace });
      const error = await providerError(provider.pull(scope, 0));
      expect(error).toMatchObject({ code: 'cursor_expired', status: 410, oldestRetainedVersion: 3 });
    } finally {
      vi.useRealTimers();
    }
  });

  test('a lost position report is sent again with the next one', async () => {
    const { deployment, workspace, transport, provider, scope } = await setup();
    await provider.push(scope, [put('kv', 'a'), put('kv', 'b')]);
    transport.failNextMutation = new Error('connection lost');
    await provider.pull(scope, 1);
    await provider.flushAcks();
    expect(await devicePositions(deployment, workspace)).toEqual([]);
    await provider.pull(scope, 1);
    await provider.flushAcks();
    expect(await devicePositions(deployment, workspace)).toEqual([[DEVICE_A, 1]]);
  });
});

describe('subscribe', () => {
  test('delivers the backlog, then each commit, in chained batches, and reports each applied cursor', async () => {
    const { deployment, workspace, provider, scope } = await setup();
    await provider.push(scope, [put('kv', 'a'), put('kv', 'b')]);
    const batches: ChangesBatch[] = [];
    const stop = provider.subscribe(scope, 0, async (batch) => {
      batches.push(batch);
    }, (error) => {
      throw error;
    });
    await waitFor(() => batches.length === 1, 'the backlog');
    expect(batches[0]).toMatchObject({ from: 0, to: 2 });
    expect(batches[0]!.changes.map((c) => c.pk)).toEqual(['a', 'b']);

    const other = new ConvexSyncProvider({ client: deployment.connect(), tokenBroker: brokerFor('bob').broker });
    await other.push({ workspaceId: workspace }, [put('kv', 'c', {}, { device: DEVICE_B })]);
    await waitFor(() => batches.length === 2, 'the new commit');
    expect(batches[1]).toMatchObject({ from: 2, to: 3 });
    expect(batches[1]!.changes.map((c) => [c.pk, c.device_id])).toEqual([['c', DEVICE_B]]);
    await waitFor(async () => {
      await provider.flushAcks();
      return JSON.stringify(await devicePositions(deployment, workspace)) === JSON.stringify([[DEVICE_A, 3]]);
    }, 'the position report');

    stop();
    await other.push({ workspaceId: workspace }, [put('kv', 'd', {}, { device: DEVICE_B })]);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(batches).toHaveLength(2);
  });

  test('waits for each batch to be applied before delivering more', async () => {
    const { deployment, workspace, provider, scope } = await setup();
    const other = new ConvexSyncProvider({ client: deployment.connect(), tokenBroker: brokerFor('bob').broker });
    let release: () => void = () => undefined;
    let inFlight = 0;
    let overlapped = false;
    const batches: ChangesBatch[] = [];
    provider.subscribe(scope, 0, async (batch) => {
      inFlight += 1;
      overlapped ||= inFlight > 1;
      batches.push(batch);
      if (batches.length === 1) await new Promise<void>((resolve) => (release = resolve));
      inFlight -= 1;
    }, () => undefined);
    await other.push({ workspaceId: workspace }, [put('kv', 'a')]);
    await waitFor(() => batches.length === 1, 'the first batch');
    await other.push({ workspaceId: workspace }, [put('kv', 'b')]);
    await other.push({ workspaceId: workspace }, [put('kv', 'c')]);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(batches).toHaveLength(1);
    release();
    await waitFor(() => batches.at(-1)?.to === 3, 'the rest');
    expect(overlapped).toBe(false);
    expect(batches.slice(1).map((b) => [b.from, b.to])).toEqual([[1, 3]]);
    provider.dispose();
  });

  test('a project-scoped subscription advances its cursor past changes outside the project', async () => {
    const { provider, scope } = await setup();
    await provider.push(scope, [put('threads', 't1', { project_id: 'Q' }), put('threads', 't2', { project_id: 'P' })]);
    const batches: ChangesBatch[] = [];
    provider.subscribe({ ...scope, projectId: 'P' }, 0, (batch) => void batches.push(batch), () => undefined);
    await waitFor(() => batches.length === 1, 'the batch');
    expect(batches[0]).toMatchObject({ from: 0, to: 2 });
    expect(batches[0]!.changes.map((c) => c.pk)).toEqual(['t2']);
    provider.dispose();
  });

  test('losing membership ends the subscription with a 403 on onError', async () => {
    const { deployment, workspace, scope } = await setup();
    const bob = new ConvexSyncProvider({ client: deployment.connect(), tokenBroker: brokerFor('bob').broker });
    const errors: SyncProviderError[] = [];
    bob.subscribe({ ...scope, deviceId: DEVICE_B }, 0, () => undefined, (error) => errors.push(error));
    await as(deployment.backend, 'alice').mutation(api.workspaces.removeMember, { workspace_id: workspace, user_id: 'bob' });
    deployment.committed();
    await waitFor(() => errors.length === 1, 'the error');
    expect(errors[0]).toMatchObject({ code: 'forbidden', status: 403 });
  });

  test('a failing onChanges ends the subscription and is reported', async () => {
    const { provider, scope } = await setup();
    await provider.push(scope, [put('kv', 'a')]);
    const errors: SyncProviderError[] = [];
    provider.subscribe(scope, 0, () => {
      throw new Error('disk full');
    }, (error) => errors.push(error));
    await waitFor(() => errors.length === 1, 'the error');
    expect(errors[0]?.message).toContain('disk full');
  });
});
