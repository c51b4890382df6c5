/**
 * The records of the first-sync benchmark (figure P9), the same in Node (which
 * pushes them to the gateway) and in the page (whose raw baseline writes them):
 * 1% threads, 99% messages of about 300 bytes of JSON, record `i` of `count`
 * computed from `i` alone, so neither side holds all of them to agree.
 */

/** The stamp's device: the "other device" that wrote every record. */
const WRITER = 'ffeeddccbbaa9988';
const BASE_MS = 1_732_540_000_000;

export interface FirstSyncRecord {
  table_name: 'threads' | 'messages';
  pk: string;
  payload: Record<string, unknown>;
  clock: number;
  hlc: string;
  op_id: string;
  device_id: string;
}

/** Threads among `count` records: 1%, at least one. */
export function threadCount(count: number): number {
  return Math.max(1, Math.floor(count / 100));
}

/** Record `i` of `count`: the threads first, then the messages, in key order (as a snapshot sends them). */
export function firstSyncRecord(i: number, count: number): FirstSyncRecord {
  const threads = threadCount(count);
  const isThread = i < threads;
  const n = isThread ? i : i - threads;
  const pk = `${isThread ? 't' : 'm'}${String(n).padStart(8, '0')}`;
  const hlc = `${String(BASE_MS + i).padStart(13, '0')}-000000-${WRITER}`;
  const payload = isThread
    ? { id: pk, title: `thread ${n}`, project_id: null, created_at: 1_732_540_000, updated_at: 1_732_540_000 }
    : {
        id: pk,
        thread_id: `t${String(n % threads).padStart(8, '0')}`,
        index: n,
        role: n % 2 ? 'assistant' : 'user',
        content:
          `message ${n}: a chat line of the first-sync benchmark, about as long as a short answer in a chat app, ` +
          `with a few words more so that the whole record is near three hundred bytes of JSON.`,
        created_at: 1_732_540_000,
        updated_at: 1_732_540_000,
      };
  return {
    table_name: isThread ? 'threads' : 'messages',
    pk,
    payload,
    clock: 1,
    hlc,
    op_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    device_id: WRITER,
  };
}
