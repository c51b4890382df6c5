/// <reference types="vite/client" />
/**
 * A fresh Convex backend per test (convex-test), with helpers that read like
 * the protocol: users, workspaces, ops.
 */
import { convexTest } from 'convex-test';
import type { PushOp } from '@or3/sync-client';
import { api } from '../convex/_generated/api.js';
import schema from '../convex/schema.js';

/** Every module of the functions directory, `_generated` included, as convex-test wants them. */
export const modules = import.meta.glob('../convex/**/*.*s');

/**
 * A fresh backend. `transactionLimits: true` makes convex-test enforce
 * Convex's read and write limits per transaction too, behind our own budget.
 */
export function newBackend() {
  return convexTest({ schema, modules, transactionLimits: true });
}

export type Backend = ReturnType<typeof newBackend>;

/** The backend as seen by a signed-in user. */
export function as(t: Backend, userId: string) {
  return t.withIdentity({ subject: userId, issuer: 'https://clerk.test', tokenIdentifier: `https://clerk.test|${userId}` });
}

/** Creates a workspace owned by `owner` and adds the other members. */
export async function workspaceWith(
  t: Backend,
  owner: string,
  members: Record<string, 'owner' | 'editor' | 'viewer'> = {},
): Promise<string> {
  const { workspace_id } = await as(t, owner).mutation(api.workspaces.createWorkspace, { name: 'test' });
  for (const [userId, role] of Object.entries(members)) {
    await as(t, owner).mutation(api.workspaces.setMember, { workspace_id, user_id: userId, role });
  }
  return workspace_id;
}

export const DEVICE_A = '9f2c4e1ab37d5e60';
export const DEVICE_B = '0123456789abcdef';

let opCounter = 0;

/** A fresh op id (UUID v4 shape). */
export function newOpId(): string {
  opCounter += 1;
  const hex = opCounter.toString(16).padStart(12, '0');
  return `00000000-0000-4000-8000-${hex}`;
}

/** An HLC at `ms` from `device`. */
export function hlcAt(ms: number, counter = 0, device = DEVICE_A): string {
  return `${String(ms).padStart(13, '0')}-${String(counter).padStart(6, '0')}-${device}`;
}

/** A valid put of one record. */
export function put(
  table: string,
  pk: string,
  fields: Record<string, unknown> = {},
  stamp: { clock?: number; ms?: number; counter?: number; device?: string; op_id?: string } = {},
): PushOp {
  const device = stamp.device ?? DEVICE_A;
  const pkField = table === 'file_meta' ? 'hash' : 'id';
  return {
    op_id: stamp.op_id ?? newOpId(),
    table_name: table,
    operation: 'put',
    pk,
    payload: { [pkField]: pk, ...fields },
    clock: stamp.clock ?? 1,
    hlc: hlcAt(stamp.ms ?? Date.now() - 1000, stamp.counter ?? 0, device),
    device_id: device,
  };
}

/** A valid delete of one record, without a tombstone row. */
export function del(
  table: string,
  pk: string,
  stamp: { clock?: number; ms?: number; counter?: number; device?: string; op_id?: string } = {},
): PushOp {
  const device = stamp.device ?? DEVICE_A;
  return {
    op_id: stamp.op_id ?? newOpId(),
    table_name: table,
    operation: 'delete',
    pk,
    payload: null,
    clock: stamp.clock ?? 2,
    hlc: hlcAt(stamp.ms ?? Date.now() - 1000, stamp.counter ?? 0, device),
    device_id: device,
  };
}

/** The `data` of a `ConvexError` a call rejected with. */
export async function errorOf(call: Promise<unknown>): Promise<{ code: string; [key: string]: unknown }> {
  try {
    await call;
  } catch (error) {
    const data = (error as { data?: unknown }).data;
    if (typeof data === 'object' && data !== null && 'code' in data) return data as { code: string };
    throw error;
  }
  throw new Error('expected the call to fail');
}
