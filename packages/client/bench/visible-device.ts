/**
 * One device of the write→visible benchmark (figure P11), run in its own
 * Chromium context by `visible-page.ts`: an app database with sync attached
 * to the real gateway over a WebSocket, and the timestamps of every stage a
 * write goes through on it. The stages are read from outside the engine, by
 * wrapping what the engine is given (its provider, the WebSocket constructor)
 * and by watching the app's tables as an app does (`put`, `liveQuery`):
 * nothing in `src/` knows it is measured.
 *
 * Times are `performance.timeOrigin + performance.now()`, comparable across
 * the two contexts of one browser (`visible.ts` measures their offset).
 */
import { Dexie, liveQuery } from 'dexie';
import type { PushResponse } from '@or3/sync-protocol';
import { attachSync } from '../src/attach.js';
import type { SyncEngine } from '../src/engine.js';
import { GatewayProvider } from '../src/gateway/gateway-provider.js';
import type { ChangesBatch, SyncProvider } from '../src/provider.js';

/** The page's clock, comparable across contexts. */
export const now = (): number => performance.timeOrigin + performance.now();

/** When one write passed each stage on the writing device (A). */
export interface WriterMarks {
  /** `put` called. */
  put: number;
  /** The capture transaction (row + outbox op) committed: its IndexedDB `complete` event, when the engine hears of it. */
  committed: number | null;
  /** `put` resolved (Dexie resolves after `complete`). */
  captured: number;
  /** The engine called the provider's `push` with the write's op. */
  pushStart: number | null;
  /** That push answered. */
  pushEnd: number | null;
  /** Ops in that push. */
  pushOps: number | null;
}

/** When one write passed each stage on the receiving device (B). */
export interface ReaderMarks {
  /** The WebSocket frame carrying it arrived (the `message` event, before the client reads it). */
  frame: number | null;
  /** The provider handed its batch to the engine (`onChanges`). */
  deliver: number | null;
  /** The apply transaction (read-write, on `messages`, opened while the engine had the batch) committed: its IndexedDB `complete` event. */
  committed: number | null;
  /** The engine's `onChanges` promise resolved (after Dexie's own `complete` handlers, which start the live query's re-query). */
  applied: number | null;
  /** The app's live query ran its query again after that commit. */
  requery: number | null;
  /** The app's live query first returned the row. */
  seen: number | null;
}

const schema = { threads: 'id, project_id, updated_at', messages: 'id, thread_id, [thread_id+index]' };

/** A 200-character chat message. */
export function chatMessage(id: string, threadId: string, index: number): Record<string, unknown> {
  const text = `message ${index}: the quick brown fox jumps over the lazy dog while the sync engine carries this line to the other device; `;
  return {
    id,
    thread_id: threadId,
    index,
    role: index % 2 ? 'assistant' : 'user',
    content: text.repeat(3).slice(0, 200),
    created_at: Math.floor(Date.now() / 1000),
    updated_at: Math.floor(Date.now() / 1000),
  };
}

/**
 * Stamps the `complete` of the next read-write IndexedDB transaction on
 * `messages` (the capture of the write being made) into `next.committed`; on
 * the reading device, of each read-write transaction on `messages` opened
 * while the engine has a batch (its apply) into the batch's `committed`.
 * This listener is added as the transaction is opened, so it runs before
 * Dexie's own (whose live-query cache re-queries inside that event).
 */
let nextCommit: WriterMarks | null = null;
let applying: ReaderMarks[] | null = null;
/** Reader marks whose write committed and whose live query has not run again since. */
let awaitingRequery: ReaderMarks[] = [];
const openTransaction = IDBDatabase.prototype.transaction;
IDBDatabase.prototype.transaction = function (this: IDBDatabase, ...args: Parameters<IDBDatabase['transaction']>) {
  const tx = openTransaction.apply(this, args);
  const [stores, mode] = args;
  const marks = nextCommit;
  const onMessages = mode === 'readwrite' && [stores].flat().includes('messages');
  if (marks && onMessages) {
    nextCommit = null;
    tx.addEventListener('complete', () => (marks.committed = now()));
  }
  const batch = applying;
  if (batch && onMessages) {
    tx.addEventListener('complete', () => {
      const at = now();
      for (const read of batch) read.committed ??= at;
      awaitingRequery.push(...batch);
    });
  }
  return tx;
};

/** A synced device and its marks. */
export class Device {
  private constructor(
    readonly engine: SyncEngine,
    readonly writes: Map<string, WriterMarks>,
    readonly reads: Map<string, ReaderMarks>,
    /** Push requests the engine made: the ops in each. */
    readonly pushes: number[],
  ) {}

  /** Attaches sync to a fresh database `name`, starts the engine, resolves once its WebSocket is open. */
  static async open(baseUrl: string, token: string, workspaceId: string, name: string): Promise<Device> {
    const writes = new Map<string, WriterMarks>();
    const reads = new Map<string, ReaderMarks>();
    const pushes: number[] = [];
    /** Stamps each frame's records on arrival, before the subscription's own handler runs. */
    class StampedWebSocket extends WebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        this.addEventListener('message', (event) => {
          const at = now();
          const frame = JSON.parse(String(event.data)) as { changes?: { pk: string }[] };
          for (const change of frame.changes ?? []) readerMarks(reads, change.pk).frame ??= at;
        });
      }
    }
    let onConnected = () => {};
    const connected = new Promise<void>((resolve) => (onConnected = resolve));
    const gateway = new GatewayProvider({
      baseUrl,
      getToken: async () => token,
      WebSocket: StampedWebSocket,
      transports: ['websocket'],
      onRealtimeState: (state) => {
        if (state.connected) onConnected();
      },
    });
    const push = async (...args: Parameters<SyncProvider['push']>): Promise<PushResponse> => {
      const start = now();
      const ops = args[1];
      pushes.push(ops.length);
      const answer = await gateway.push(...args);
      const end = now();
      for (const op of ops) {
        const marks = writes.get(op.pk);
        if (marks && marks.pushStart === null) Object.assign(marks, { pushStart: start, pushEnd: end, pushOps: ops.length });
      }
      return answer;
    };
    const subscribe = (...[scope, cursor, onChanges, ...rest]: Parameters<SyncProvider['subscribe']>) =>
      gateway.subscribe(
        scope,
        cursor,
        async (batch: ChangesBatch) => {
          const at = now();
          const marks = batch.changes.map((change) => readerMarks(reads, change.pk));
          for (const read of marks) read.deliver ??= at;
          applying = marks;
          try {
            await onChanges(batch);
          } finally {
            applying = null;
          }
          const done = now();
          for (const read of marks) read.applied ??= done;
        },
        ...rest,
      );
    const provider: SyncProvider = new Proxy(gateway, {
      get(target, prop) {
        if (prop === 'push') return push;
        if (prop === 'subscribe') return subscribe;
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const db = new Dexie(name);
    db.version(1).stores(schema);
    const engine = await attachSync(db, { workspaceId, provider, syncedTables: ['threads', 'messages'], broadcast: false });
    engine.start();
    await connected;
    return new Device(engine, writes, reads, pushes);
  }

  /** Watches thread `threadId` as a chat view does, stamping each message the first time the query returns it. */
  watch(threadId: string): () => void {
    const query = () => {
      const at = now();
      for (const read of awaitingRequery) read.requery ??= at;
      awaitingRequery = [];
      return this.engine.db.table('messages').where('thread_id').equals(threadId).toArray();
    };
    const subscription = liveQuery(query).subscribe({
      next: (rows: { id: string }[]) => {
        const at = now();
        for (const row of rows) readerMarks(this.reads, row.id).seen ??= at;
      },
    });
    return () => subscription.unsubscribe();
  }

  /** Writes one message and stamps its capture. */
  async write(row: Record<string, unknown>): Promise<void> {
    const marks: WriterMarks = { put: now(), committed: null, captured: 0, pushStart: null, pushEnd: null, pushOps: null };
    this.writes.set(String(row.id), marks);
    nextCommit = marks;
    await this.engine.db.table('messages').put(row);
    marks.captured = now();
  }

  async close(): Promise<void> {
    await this.engine.close();
    await Dexie.delete(this.engine.db.name);
  }
}

function readerMarks(reads: Map<string, ReaderMarks>, pk: string): ReaderMarks {
  let marks = reads.get(pk);
  if (!marks) reads.set(pk, (marks = { frame: null, deliver: null, committed: null, applied: null, requery: null, seen: null }));
  return marks;
}
