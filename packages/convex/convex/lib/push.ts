/**
 * The push algorithm (PROTOCOL.md section 4): validate each op, then apply it
 * if it wins last-writer-wins against the stored version, in request order, in
 * one Convex transaction. Each applied op gets the next server_version from
 * the workspace counter, a log entry and an op-id record.
 */
import {
  compareStamps,
  validateOp,
  type OpResult,
  type PushResponse,
  type RecordPayload,
  type ValidOp,
  type Winner,
} from '@or3/sync-protocol';
import type { Doc } from '../_generated/dataModel.js';
import type { MutationCtx } from '../_generated/server.js';
import { TransactionBudget } from './budget.js';
import type { SyncConfig } from './config.js';
import { CONVEX_LIMITS, checkConvexStorable, storedDocumentBytes } from './convexLimits.js';
import { readCounter, writeCounter } from './counters.js';
import { requestError } from './errors.js';
import { MESSAGES, THREADS, ThreadLookup, stringField } from './scope.js';

/** Most ops in one push (PROTOCOL.md section 4). */
export const MAX_OPS_PER_PUSH = 500;

/** Where an applied op belongs, resolved at commit time. */
interface ResolvedScope {
  scoped: boolean;
  project_ids: string[];
  scope_change: boolean;
  /** Stored on the record: its project at this commit (a thread's own, a message's thread's). */
  project_id: string | null;
  /** Stored on the record: the message's thread. */
  thread_id: string | null;
}

/** Pushes a batch of raw ops into a workspace; the caller has checked the role. */
export async function pushOps(
  ctx: MutationCtx,
  config: SyncConfig,
  workspaceId: string,
  rawOps: readonly unknown[],
): Promise<PushResponse> {
  if (rawOps.length > MAX_OPS_PER_PUSH) {
    throw requestError('batch_too_large', `a push holds at most ${MAX_OPS_PER_PUSH} ops; got ${rawOps.length}`, {
      field: 'ops',
    });
  }
  const now = Date.now();
  const budget = new TransactionBudget();
  const threads = new ThreadLookup(ctx, workspaceId, budget);
  const counter = await readCounter(ctx, workspaceId);
  const committedAt = Math.max(now, counter.last_committed_at);
  let version = counter.server_version;
  const results: OpResult[] = [];

  for (const [index, raw] of rawOps.entries()) {
    const outcome = validateOp(raw, { ...config, nowMs: now, checkPayload: checkConvexStorable });
    if (!outcome.ok) {
      results.push({ op_id: outcome.op_id, status: 'rejected', error: outcome.rejection });
      continue;
    }
    const op = outcome.op;
    const result = await applyOp(ctx, op, {
      workspaceId,
      nextVersion: version + 1,
      committedAt,
      budget,
      threads,
    });
    if (result.status === 'applied') version = result.server_version;
    results.push(result);
    const over = budget.exceeded();
    if (over !== null) {
      throw requestError(
        'batch_too_large',
        `the batch would exceed Convex's per-transaction ${over} at op ${index}; nothing was committed, push fewer ops at a time`,
        { field: 'ops' },
      );
    }
  }

  if (version !== counter.server_version) {
    await writeCounter(ctx, workspaceId, counter, { server_version: version, last_committed_at: committedAt });
  }
  return { results, server_version: version, server_time: now };
}

interface ApplyContext {
  workspaceId: string;
  nextVersion: number;
  committedAt: number;
  budget: TransactionBudget;
  threads: ThreadLookup;
}

async function applyOp(ctx: MutationCtx, op: ValidOp, at: ApplyContext): Promise<OpResult> {
  const { workspaceId, budget } = at;
  const seen = await ctx.db
    .query('applied_ops')
    .withIndex('by_op', (q) => q.eq('workspace_id', workspaceId).eq('op_id', op.op_id))
    .unique();
  budget.read(seen);
  if (seen !== null) return seenBefore(ctx, op, workspaceId, seen.server_version, budget);

  const stored = await ctx.db
    .query('records')
    .withIndex('by_key', (q) => q.eq('workspace_id', workspaceId).eq('table_name', op.table_name).eq('pk', op.pk))
    .unique();
  budget.read(stored);
  if (stored !== null) {
    const order = compareStamps(op, stored);
    if (order === 0) return { op_id: op.op_id, status: 'duplicate', server_version: stored.server_version };
    if (order < 0) {
      const winner = winnerOf(stored);
      budget.answer(winner);
      return { op_id: op.op_id, status: 'superseded', winner };
    }
  }

  const scope = await resolveScope(ctx, op, stored, at);
  const serverVersion = at.nextVersion;
  const record = {
    workspace_id: workspaceId,
    table_name: op.table_name,
    pk: op.pk,
    payload: op.payload,
    deleted: op.deleted,
    clock: op.clock,
    hlc: op.hlc,
    op_id: op.op_id,
    device_id: op.device_id,
    server_version: serverVersion,
    committed_at: at.committedAt,
    project_id: scope.project_id,
    thread_id: scope.thread_id,
    payload_purged: false,
  };
  const entry = {
    workspace_id: workspaceId,
    server_version: serverVersion,
    table_name: op.table_name,
    pk: op.pk,
    operation: op.operation,
    payload: op.payload,
    clock: op.clock,
    hlc: op.hlc,
    op_id: op.op_id,
    device_id: op.device_id,
    scoped: scope.scoped,
    project_ids: scope.project_ids,
    scope_change: scope.scope_change,
    committed_at: at.committedAt,
  };
  const largest = Math.max(storedDocumentBytes(record), storedDocumentBytes(entry));
  if (largest > CONVEX_LIMITS.documentBytes) {
    return {
      op_id: op.op_id,
      status: 'rejected',
      error: {
        code: 'payload_too_large',
        message: `stored with its stamp the record takes ${largest} bytes; a Convex document holds at most ${CONVEX_LIMITS.documentBytes}`,
        field: 'payload',
      },
    };
  }
  const applied = { workspace_id: workspaceId, op_id: op.op_id, server_version: serverVersion };
  budget.write(record);
  budget.write(entry);
  budget.write(applied);

  if (stored === null) await ctx.db.insert('records', record);
  else await ctx.db.replace(stored._id, record);
  await ctx.db.insert('change_log', entry);
  await ctx.db.insert('applied_ops', applied);
  if (op.table_name === THREADS) at.threads.forget(op.pk);
  return { op_id: op.op_id, status: 'applied', server_version: serverVersion };
}

/** The stored version that beat an op, whole. */
function winnerOf(stored: Doc<'records'>): Winner {
  return {
    clock: stored.clock,
    hlc: stored.hlc,
    op_id: stored.op_id,
    server_version: stored.server_version,
    deleted: stored.deleted,
    payload: stored.payload as RecordPayload | null,
  };
}

/**
 * An op whose id was applied at `version`: the same op again is a duplicate;
 * other content under that id (table, pk, logged operation, clock, hlc,
 * device) is refused as `op_id_reused`, so its write is never silently
 * dropped. Once GC purged the log entry the content is unknown: a duplicate.
 */
async function seenBefore(
  ctx: MutationCtx,
  op: ValidOp,
  workspaceId: string,
  version: number,
  budget: TransactionBudget,
): Promise<OpResult> {
  const entry = await ctx.db
    .query('change_log')
    .withIndex('by_version', (q) => q.eq('workspace_id', workspaceId).eq('server_version', version))
    .unique();
  budget.read(entry);
  const same =
    entry === null ||
    (entry.table_name === op.table_name &&
      entry.pk === op.pk &&
      (entry.operation === 'delete' || entry.payload?.deleted === true) === op.deleted &&
      entry.clock === op.clock &&
      entry.hlc === op.hlc &&
      entry.device_id === op.device_id);
  if (same) return { op_id: op.op_id, status: 'duplicate', server_version: version };
  return {
    op_id: op.op_id,
    status: 'rejected',
    error: {
      code: 'op_id_reused',
      message: `this op_id was applied at version ${version} by an op with other content; a new write needs a new op_id`,
      field: 'op_id',
    },
  };
}

/**
 * Resolves the projects of an applied op at commit time (PROTOCOL.md section
 * 1), as `sync_core::push` does and `conformance/push.json` pins. The row is
 * the payload, or for a delete without one the stored record's. A thread is in
 * the project its row names; a message in its thread's current project. The
 * entry is a scope change when that differs from the project the record was
 * last committed under (stored on the record for threads and messages alike),
 * and for a new thread that a message already names, which a project-scoped
 * client has not seen in its project yet.
 */
async function resolveScope(
  ctx: MutationCtx,
  op: ValidOp,
  stored: Doc<'records'> | null,
  at: ApplyContext,
): Promise<ResolvedScope> {
  // A delete without payload keeps the stored row, so its project and thread.
  const bare = op.payload === null;
  let project: string | null;
  let thread: string | null = null;
  if (op.table_name === THREADS) {
    project = bare ? (stored?.project_id ?? null) : stringField(op.payload, 'project_id');
  } else if (op.table_name === MESSAGES) {
    thread = bare ? (stored?.thread_id ?? null) : stringField(op.payload, 'thread_id');
    project = await at.threads.projectOf(thread);
  } else {
    return { scoped: false, project_ids: [], scope_change: false, project_id: null, thread_id: null };
  }
  let moved: boolean;
  let previous: string | null = null;
  if (stored !== null) {
    previous = stored.project_id;
    moved = previous !== project;
  } else if (op.table_name === THREADS) {
    const named = await ctx.db
      .query('records')
      .withIndex('by_thread', (q) => q.eq('workspace_id', at.workspaceId).eq('thread_id', op.pk))
      .first();
    at.budget.read(named);
    moved = named !== null;
  } else {
    moved = false;
  }
  return {
    scoped: true,
    project_ids: distinctProjects(moved ? previous : null, project),
    scope_change: moved,
    project_id: project,
    // A message edit that names no thread keeps the one it had.
    thread_id: thread ?? stored?.thread_id ?? null,
  };
}

function distinctProjects(a: string | null, b: string | null): string[] {
  const projects = new Set<string>();
  if (a !== null) projects.add(a);
  if (b !== null) projects.add(b);
  return [...projects];
}
