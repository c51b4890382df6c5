/**
 * The push algorithm (PROTOCOL.md section 4): validate each op, then apply it
 * if it wins last-writer-wins against the stored version, in request order, in
 * one Convex transaction. Each applied op gets the next server_version from
 * the workspace counter, a log entry and an op-id record.
 */
import type { OpResult, PushResponse, Winner } from '@or3/sync-client';
import type { Doc } from '../_generated/dataModel.js';
import type { MutationCtx } from '../_generated/server.js';
import { TransactionBudget } from './budget.js';
import type { SyncConfig } from './config.js';
import { CONVEX_LIMITS, storedDocumentBytes } from './convexLimits.js';
import { readCounter, writeCounter } from './counters.js';
import { requestError } from './errors.js';
import { MESSAGES, THREADS, ThreadLookup, stringField } from './scope.js';
import { compareStamps } from './stamps.js';
import { validateOp, type RecordPayload, type ValidOp } from './validation.js';

/** Most ops in one push (PROTOCOL.md section 4). */
export const MAX_OPS_PER_PUSH = 500;

/** Where an applied op belongs, resolved at commit time. */
interface ResolvedScope {
  scoped: boolean;
  project_ids: string[];
  scope_change: boolean;
  /** Stored on the record: the thread's project. */
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
    const outcome = validateOp(raw, { ...config, nowMs: now });
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
  if (seen !== null) return { op_id: op.op_id, status: 'duplicate', server_version: seen.server_version };

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
 * Resolves the projects of an applied op at commit time. A thread takes its
 * project from its payload (a delete from the stored row); a message takes its
 * thread's current project, and when it moved between threads, the old
 * thread's project too. A thread whose project changed is logged with both
 * projects and `scope_change`; so is a new thread that already has messages,
 * which a project-scoped client has not seen yet.
 */
async function resolveScope(
  ctx: MutationCtx,
  op: ValidOp,
  stored: Doc<'records'> | null,
  at: ApplyContext,
): Promise<ResolvedScope> {
  if (op.table_name === THREADS) {
    const project =
      op.operation === 'delete' && stored !== null ? stored.project_id : stringField(op.payload, 'project_id');
    let scopeChange = stored !== null && stored.project_id !== project;
    if (stored === null) {
      const orphan = await ctx.db
        .query('records')
        .withIndex('by_thread', (q) => q.eq('workspace_id', at.workspaceId).eq('thread_id', op.pk))
        .first();
      at.budget.read(orphan);
      scopeChange = orphan !== null;
    }
    return {
      scoped: true,
      project_ids: distinctProjects(stored?.project_id ?? null, project),
      scope_change: scopeChange,
      project_id: project,
      thread_id: null,
    };
  }
  if (op.table_name === MESSAGES) {
    const thread =
      op.operation === 'delete' && stored !== null
        ? stored.thread_id
        : (stringField(op.payload, 'thread_id') ?? stored?.thread_id ?? null);
    const previous = stored !== null && stored.thread_id !== thread ? stored.thread_id : null;
    return {
      scoped: true,
      project_ids: distinctProjects(await at.threads.projectOf(previous), await at.threads.projectOf(thread)),
      scope_change: false,
      project_id: null,
      thread_id: thread,
    };
  }
  return { scoped: false, project_ids: [], scope_change: false, project_id: null, thread_id: null };
}

function distinctProjects(a: string | null, b: string | null): string[] {
  const projects = new Set<string>();
  if (a !== null) projects.add(a);
  if (b !== null) projects.add(b);
  return [...projects];
}
