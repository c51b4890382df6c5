/**
 * The repo's conformance vectors (conformance/README.md), run against the
 * Convex `push` mutation itself. The rule functions it uses (HLC parsing, the
 * stamp order, op validation) are @or3/sync-protocol's, whose own suite runs
 * the same vectors against them.
 */
import { afterEach, describe, expect, test, vi } from 'vitest';
import lwwFile from '../../../conformance/lww.json';
import pushFile from '../../../conformance/push.json';
import validationFile from '../../../conformance/validation.json';
import { api } from '../convex/_generated/api.js';
import { ENV } from '../convex/lib/config.js';
import { as, newBackend, workspaceWith } from './setup.js';

interface VectorConfig {
  tables: Record<string, string>;
  max_payload_bytes: number;
  max_clock_skew_ms: number;
  now_ms: number;
}

interface LwwStamp {
  clock: number;
  hlc: string;
  op_id: string;
  deleted: boolean;
}

const CONFIG_KEYS = ['tables', 'max_payload_bytes', 'max_clock_skew_ms', 'now_ms'];

afterEach(() => {
  vi.useRealTimers();
  for (const name of Object.values(ENV)) delete process.env[name];
});

describe('validation.json against push', () => {
  const base = validationFile.config as VectorConfig;
  expect(Object.keys(validationFile).sort()).toEqual(['config', 'description', 'vectors']);
  expect(Object.keys(base).sort()).toEqual([...CONFIG_KEYS].sort());

  for (const vector of validationFile.vectors as Array<Record<string, unknown>>) {
    test(String(vector.why), async () => {
      for (const key of Object.keys(vector)) expect(['why', 'op', 'expect', 'config']).toContain(key);
      const override = (vector.config ?? {}) as Partial<VectorConfig>;
      for (const key of Object.keys(override)) expect(CONFIG_KEYS).toContain(key);
      const config: VectorConfig = { ...base, ...override };
      const expected = vector.expect;
      const expectedCode =
        expected === 'ok' ? null : (expected as { rejected: string }).rejected;
      if (expected !== 'ok') expect(Object.keys(expected as object)).toEqual(['rejected']);

      // The deployed mutation, configured through its environment, at the vector's server time.
      vi.useFakeTimers({ toFake: ['Date'], now: config.now_ms });
      process.env[ENV.tables] = JSON.stringify(config.tables);
      process.env[ENV.maxPayloadBytes] = String(config.max_payload_bytes);
      process.env[ENV.maxClockSkewMs] = String(config.max_clock_skew_ms);
      const t = newBackend();
      const workspace = await workspaceWith(t, 'alice');
      const response = await as(t, 'alice').mutation(api.sync.push, { workspace_id: workspace, ops: [vector.op] });
      expect(response.results).toHaveLength(1);
      const result = response.results[0]!;
      if (expectedCode === null) {
        expect(result).toMatchObject({ status: 'applied', server_version: 1 });
      } else {
        expect(result.status).toBe('rejected');
        expect(result.status === 'rejected' && result.error.code).toBe(expectedCode);
        expect(result.status === 'rejected' && result.error.retryable === true).toBe(expectedCode === 'clock_skew');
        expect(response.server_version).toBe(0);
      }
    });
  }
});

describe('lww.json against push', () => {
  expect(Object.keys(lwwFile).sort()).toEqual(['description', 'vectors']);

  for (const vector of lwwFile.vectors as Array<{ why: string; a: LwwStamp; b: LwwStamp; expect: string }>) {
    test(vector.why, async () => {
      expect(Object.keys(vector).sort()).toEqual(['a', 'b', 'expect', 'why']);
      expect(['a', 'b', 'equal']).toContain(vector.expect);

      // Push in both orders (op ids are per workspace, so one workspace
      // each); the stored version is the expected winner either way.
      const t = newBackend();
      for (const [first, second, pk] of [
        [vector.a, vector.b, 'ab'],
        [vector.b, vector.a, 'ba'],
      ] as const) {
        const workspace = await workspaceWith(t, 'alice');
        const push = (stamp: LwwStamp) =>
          as(t, 'alice').mutation(api.sync.push, { workspace_id: workspace, ops: [opFor(pk, stamp)] });
        const one = await push(first);
        expect(one.results[0]?.status).toBe('applied');
        // Some vectors reuse one op_id for both stamps, which the op-id record
        // would answer as `duplicate` before LWW is consulted. Forget op ids
        // (as GC does), so the second push is decided by its stamp alone.
        await t.run(async (ctx) => {
          for (const row of await ctx.db.query('applied_ops').collect()) await ctx.db.delete(row._id);
        });
        const two = (await push(second)).results[0]!;
        const secondWins = vector.expect === (second === vector.a ? 'a' : 'b');
        if (vector.expect === 'equal') expect(two.status).toBe('duplicate');
        else expect(two.status).toBe(secondWins ? 'applied' : 'superseded');
        if (two.status === 'superseded') {
          expect(two.winner).toMatchObject({ clock: first.clock, hlc: first.hlc, op_id: first.op_id, deleted: first.deleted });
        }
        const stored = await as(t, 'alice').query(api.sync.getRecord, {
          workspace_id: workspace,
          table_name: 'threads',
          pk,
        });
        const winner = vector.expect === 'b' ? vector.b : vector.a;
        expect(stored).toMatchObject({ clock: winner.clock, hlc: winner.hlc, op_id: vector.expect === 'equal' ? first.op_id : winner.op_id });
      }
    });
  }
});

function opFor(pk: string, stamp: LwwStamp) {
  const deviceId = stamp.hlc.split('-')[2]!;
  return {
    op_id: stamp.op_id,
    table_name: 'threads',
    operation: stamp.deleted ? 'delete' : 'put',
    pk,
    payload: stamp.deleted ? null : { id: pk, title: stamp.op_id },
    clock: stamp.clock,
    hlc: stamp.hlc,
    device_id: deviceId,
  };
}

interface PushVector {
  why: string;
  stored: unknown[];
  batch: unknown[];
  expect: { results: Array<Record<string, unknown>>; head: number };
}

describe('push.json against push', () => {
  expect(Object.keys(pushFile).sort()).toEqual(['config', 'description', 'vectors']);
  const config = pushFile.config as { tables: Record<string, string>; now_ms: number };
  expect(Object.keys(config).sort()).toEqual(['now_ms', 'tables']);

  for (const vector of pushFile.vectors as unknown as PushVector[]) {
    test(vector.why, async () => {
      expect(Object.keys(vector).sort()).toEqual(['batch', 'expect', 'stored', 'why']);
      vi.useFakeTimers({ toFake: ['Date'], now: config.now_ms });
      process.env[ENV.tables] = JSON.stringify(config.tables);
      const t = newBackend();
      const workspace = await workspaceWith(t, 'alice');
      const push = (ops: unknown[]) => as(t, 'alice').mutation(api.sync.push, { workspace_id: workspace, ops });
      const stored = await push(vector.stored);
      expect(stored.results.map((r) => [r.status, r.status === 'applied' ? r.server_version : null])).toEqual(
        vector.stored.map((_, i) => ['applied', i + 1]),
      );
      const before = stored.server_version;
      const response = await push(vector.batch);
      const log = await t.run((ctx) => ctx.db.query('change_log').collect());
      const results = response.results.map((r, i) => {
        const sent = vector.batch[i] as { op_id?: unknown };
        if (r.status === 'rejected') return { status: 'rejected', code: r.error.code };
        // Results carry the op id in its one (lowercase) spelling.
        expect(r.op_id).toBe(String(sent.op_id).toLowerCase());
        if (r.status === 'duplicate') return { status: 'duplicate', server_version: r.server_version };
        if (r.status === 'superseded') {
          const { server_version, op_id, deleted } = r.winner;
          return { status: 'superseded', winner: { server_version, op_id, deleted } };
        }
        const entry = log.find((e) => e.server_version === r.server_version && e.server_version > before);
        expect(entry, 'an applied op is logged at its version').toBeDefined();
        return { status: 'applied', server_version: r.server_version, scope: entry! };
      });
      const expected = vector.expect.results.map((e) => {
        if (e.status !== 'applied') return e;
        const scope = e.scope as { scoped: boolean; project_id: string | null; prev_project_id: string | null; scope_change: boolean };
        // Convex keeps the set of projects an entry belongs to.
        const projects = [scope.project_id, scope.prev_project_id].filter((p) => p !== null).sort();
        return { ...e, scope: { scoped: scope.scoped, project_ids: projects, scope_change: scope.scope_change } };
      });
      const actual = results.map((r) =>
        r.status === 'applied'
          ? {
              ...r,
              scope: {
                scoped: (r.scope as { scoped: boolean }).scoped,
                project_ids: [...(r.scope as { project_ids: string[] }).project_ids].sort(),
                scope_change: (r.scope as { scope_change: boolean }).scope_change,
              },
            }
          : r,
      );
      expect({ results: actual, head: response.server_version }).toEqual({ results: expected, head: vector.expect.head });
    });
  }
});
