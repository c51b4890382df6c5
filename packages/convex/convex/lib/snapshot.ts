/**
 * Snapshot pages (PROTOCOL.md section 4, Snapshot): the current state of every
 * record in scope, tombstones included, ordered by `(table_name, pk)`. The
 * first page fixes `snapshot_version`; the opaque page token binds workspace,
 * scope and that version, and says where the next page starts.
 */
import type { RecordPayload, SnapshotItem, SnapshotPage } from '@or3/sync-protocol';
import type { Doc } from '../_generated/dataModel.js';
import type { QueryCtx } from '../_generated/server.js';
import { TransactionBudget, sizeOf } from './budget.js';
import { readCounter } from './counters.js';
import { requestError } from './errors.js';
import { ThreadLookup } from './scope.js';

export const SNAPSHOT_DEFAULT_LIMIT = 500;
export const SNAPSHOT_MAX_LIMIT = 1000;
const SNAPSHOT_ANSWER_BYTES = 4 * 1024 * 1024;
const SNAPSHOT_MAX_EXAMINED = 5000;

/** What a page token holds. */
interface PageToken {
  /** Workspace. */
  w: string;
  /** Project scope, null for the whole workspace. */
  p: string | null;
  /** snapshot_version fixed by the first page. */
  v: number;
  /** The last `(table_name, pk)` examined. */
  t: string;
  k: string;
}

/** One page of the snapshot of a scope. */
export async function readSnapshotPage(
  ctx: QueryCtx,
  workspaceId: string,
  projectId: string | null,
  pageToken: string | null,
  requestedLimit: number | undefined,
): Promise<SnapshotPage> {
  const limit = snapshotLimit(requestedLimit);
  const token = pageToken === null ? null : decodePageToken(pageToken, workspaceId, projectId);
  const snapshotVersion = token?.v ?? (await readCounter(ctx, workspaceId)).server_version;
  const budget = new TransactionBudget();
  const threads = new ThreadLookup(ctx, workspaceId, budget);
  const items: SnapshotItem[] = [];
  let answerBytes = 0;
  let examined = 0;
  let last: { t: string; k: string } | null = token === null ? null : { t: token.t, k: token.k };
  let exhausted = true;

  for await (const record of recordsAfter(ctx, workspaceId, last)) {
    if ((examined > 0 && !budget.readFits(sizeOf(record))) || examined >= SNAPSHOT_MAX_EXAMINED) {
      exhausted = false;
      break;
    }
    budget.read(record);
    if (projectId === null || (await threads.inProject(record, projectId))) {
      const item = toSnapshotItem(record);
      const bytes = sizeOf(item);
      if (items.length > 0 && answerBytes + bytes > SNAPSHOT_ANSWER_BYTES) {
        exhausted = false;
        break;
      }
      items.push(item);
      answerBytes += bytes;
    }
    examined += 1;
    last = { t: record.table_name, k: record.pk };
    if (items.length >= limit) {
      exhausted = false;
      break;
    }
  }

  const next =
    exhausted || last === null
      ? null
      : encodePageToken({ w: workspaceId, p: projectId, v: snapshotVersion, t: last.t, k: last.k });
  return { snapshot_version: snapshotVersion, items, next_page_token: next };
}

/** A record in its wire shape (also the answer of `getRecord`). */
export function toSnapshotItem(record: Doc<'records'>): SnapshotItem {
  return {
    table_name: record.table_name,
    pk: record.pk,
    payload: record.payload as RecordPayload | null,
    deleted: record.deleted,
    clock: record.clock,
    hlc: record.hlc,
    op_id: record.op_id,
    server_version: record.server_version,
    committed_at: record.committed_at,
  };
}

/** Records in `(table_name, pk)` order after `after`: the rest of its table, then the tables after it. */
async function* recordsAfter(
  ctx: QueryCtx,
  workspaceId: string,
  after: { t: string; k: string } | null,
): AsyncGenerator<Doc<'records'>> {
  if (after === null) {
    yield* ctx.db.query('records').withIndex('by_key', (q) => q.eq('workspace_id', workspaceId));
    return;
  }
  yield* ctx.db
    .query('records')
    .withIndex('by_key', (q) => q.eq('workspace_id', workspaceId).eq('table_name', after.t).gt('pk', after.k));
  yield* ctx.db
    .query('records')
    .withIndex('by_key', (q) => q.eq('workspace_id', workspaceId).gt('table_name', after.t));
}

function snapshotLimit(requested: number | undefined): number {
  if (requested === undefined) return SNAPSHOT_DEFAULT_LIMIT;
  if (!Number.isSafeInteger(requested) || requested < 1) {
    throw requestError('invalid_input', 'limit must be a positive integer', { field: 'limit' });
  }
  return Math.min(requested, SNAPSHOT_MAX_LIMIT);
}

function encodePageToken(token: PageToken): string {
  const bytes = new TextEncoder().encode(JSON.stringify(token));
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Decodes a page token, refusing one that is malformed or bound to another workspace or scope. */
function decodePageToken(raw: string, workspaceId: string, projectId: string | null): PageToken {
  const invalid = (why: string) => requestError('invalid_input', `page_token ${why}`, { field: 'page_token' });
  let token: unknown;
  try {
    const binary = atob(raw.replace(/-/g, '+').replace(/_/g, '/'));
    token = JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
  } catch {
    throw invalid('is not one this server issued');
  }
  if (
    typeof token !== 'object' ||
    token === null ||
    typeof (token as PageToken).w !== 'string' ||
    !(typeof (token as PageToken).p === 'string' || (token as PageToken).p === null) ||
    !Number.isSafeInteger((token as PageToken).v) ||
    typeof (token as PageToken).t !== 'string' ||
    typeof (token as PageToken).k !== 'string'
  ) {
    throw invalid('is not one this server issued');
  }
  const parsed = token as PageToken;
  if (parsed.w !== workspaceId) throw invalid('belongs to another workspace');
  if (parsed.p !== projectId) throw invalid('belongs to another scope');
  return parsed;
}
