/**
 * Capture's I/O below the middleware: reading the stored records of a write
 * (by key or by key range), expanding a mutation into per-record writes,
 * writing the stamped rows, and the wire form of a local key, which apply, rescan and adoption share.
 */
import type { DBCoreMutateRequest, DBCoreMutateResponse, DBCoreTable, DBCoreTransaction } from 'dexie';
import type { RecordPayload } from '@or3/sync-protocol';
import type { SyncedTable } from '../schema.js';
import type { LocalWrite } from './plan.js';
import { CaptureError } from './runtime.js';

/** The wire form of a local primary key. */
export function pkToWire(pk: unknown): string {
  return typeof pk === 'string' ? pk : String(pk);
}

/** Below this many keys, reading each key is cheaper than reading their key range. */
const RANGE_READ_MIN_KEYS = 16;

/**
 * The records at `keys` (whose ids, as strings, are `ids`), in order. Many
 * keys whose ids order like the keys (`bounds` maps the lowest and highest id
 * to keys) are read as their key range in one request, bounded to twice their
 * number of records, so a bulk write into an empty or sparse key range costs
 * one request instead of one per key; a denser range falls back to one get
 * per key.
 */
export async function readRecords<T>(
  table: DBCoreTable,
  trans: DBCoreTransaction,
  keys: unknown[],
  ids: string[],
  idOf: (record: T) => string,
  bounds: ((lower: string, upper: string) => [unknown, unknown]) | null,
): Promise<(T | undefined)[]> {
  const perKey = () => table.getMany({ trans, keys }) as Promise<(T | undefined)[]>;
  if (keys.length < RANGE_READ_MIN_KEYS || bounds === null) return perKey();
  let lower = ids[0]!;
  let upper = ids[0]!;
  for (const id of ids) {
    if (id < lower) lower = id;
    if (id > upper) upper = id;
  }
  const [low, high] = bounds(lower, upper);
  const limit = keys.length * 2;
  const { result } = await table.query({
    trans,
    values: true,
    limit: limit + 1,
    query: { index: table.schema.primaryKey, range: { type: 2 /* DBCoreRangeType.Range */, lower: low, upper: high } },
  });
  if (result.length > limit) return perKey();
  const byId = new Map<string, T>();
  for (const record of result as T[]) byId.set(idOf(record), record);
  return ids.map((id) => byId.get(id));
}

/** Expands any mutation into per-record writes (deletes get their keys resolved, a range delete its rows). */
export async function collectWrites(
  table: DBCoreTable,
  synced: SyncedTable,
  req: DBCoreMutateRequest,
): Promise<{ writes: LocalWrite[]; rows?: (RecordPayload | undefined)[] }> {
  switch (req.type) {
    case 'add':
    case 'put':
      return {
        writes: req.values.map((value: RecordPayload, index) => {
          const pk = value?.[synced.primaryKey];
          if (pk === undefined || pk === null || pk === '') {
            throw new CaptureError(`a row of ${synced.name} has no ${synced.primaryKey}`);
          }
          return { index, pk, value };
        }),
      };
    case 'delete':
      return { writes: req.keys.map((pk, index) => ({ index, pk, value: null })) };
    case 'deleteRange': {
      const primaryKey = table.schema.primaryKey;
      const extractKey = primaryKey.extractKey;
      const { result } = await table.query({
        trans: req.trans,
        values: extractKey !== null,
        query: { index: primaryKey, range: req.range },
      });
      if (extractKey === null) return { writes: result.map((pk, index) => ({ index, pk, value: null })) };
      return {
        writes: (result as RecordPayload[]).map((row, index) => ({ index, pk: extractKey(row), value: null })),
        rows: result as RecordPayload[],
      };
    }
  }
}

/**
 * Writes the stamped rows below the middleware and answers in the shape of the
 * original request (results and failures indexed like its values or keys).
 */
export async function writeRows(
  table: DBCoreTable,
  req: DBCoreMutateRequest,
  count: number,
  puts: { write: LocalWrite; row: RecordPayload }[],
  removals: LocalWrite[],
): Promise<DBCoreMutateResponse> {
  const failures: Record<number, Error> = {};
  const results: unknown[] = new Array(count);
  if (puts.length > 0) {
    const res = await table.mutate({
      trans: req.trans,
      type: req.type === 'add' ? 'add' : 'put',
      values: puts.map((p) => p.row),
    });
    puts.forEach((p, i) => {
      const failure = res.failures[i];
      if (failure) failures[p.write.index] = failure;
      else results[p.write.index] = res.results?.[i] ?? p.write.pk;
    });
  }
  if (removals.length > 0) {
    const res = await table.mutate({ trans: req.trans, type: 'delete', keys: removals.map((w) => w.pk) });
    removals.forEach((w, i) => {
      const failure = res.failures[i];
      if (failure) failures[w.index] = failure;
      else results[w.index] = w.pk;
    });
  }
  const numFailures = Object.keys(failures).length;
  if (req.type === 'delete' || req.type === 'deleteRange') {
    return { numFailures, failures, lastResult: undefined };
  }
  return { numFailures, failures, results, lastResult: results[count - 1] };
}
