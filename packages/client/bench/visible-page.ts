/**
 * Browser entry of the write→visible benchmark (figure P11): `visible.ts`
 * loads it into two Chromium contexts (device A writes, device B watches)
 * and calls these phases one by one. The floor phases send the same
 * `changes` frames through a bare broadcast server instead (no engine, no
 * gateway): A publishes each frame, B stamps it on arrival.
 */
import { chatMessage, Device, now, type ReaderMarks, type WriterMarks } from './visible-device.js';

let device: Device | null = null;
let stopWatching = () => {};
/** The floor: when A sent each frame, when B received it. */
const floorSent = new Map<string, number>();
const floorReceived = new Map<string, number>();
let floorSocket: WebSocket | null = null;

declare global {
  interface Window {
    p11WallOffset(): number;
    p11Open(baseUrl: string, token: string, workspaceId: string, name: string, threadId: string): Promise<void>;
    p11Write(ids: string[], threadId: string, firstIndex: number, intervalMs: number): Promise<void>;
    p11WaitSeen(pk: string, timeoutMs: number): Promise<boolean>;
    p11Marks(): { writes: [string, WriterMarks][]; reads: [string, ReaderMarks][]; pushes: number[] };
    p11Close(): Promise<void>;
    p11FloorConnect(url: string): Promise<void>;
    p11FloorPublish(ids: string[], threadId: string, firstIndex: number, intervalMs: number): Promise<void>;
    p11FloorWait(pk: string, timeoutMs: number): Promise<boolean>;
    p11FloorMarks(): { sent: [string, number][]; received: [string, number][] };
  }
}

/** Calls `send(i)` for each of `count`, `intervalMs` apart on the clock (not after each other's end). */
async function paced(count: number, intervalMs: number, send: (i: number) => Promise<void> | void): Promise<void> {
  const start = performance.now();
  const pending: (Promise<void> | void)[] = [];
  for (let i = 0; i < count; i++) {
    const wait = start + i * intervalMs - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(send(i));
  }
  await Promise.all(pending);
}

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}

/**
 * Wall clock (`Date.now()`, the system's, shared by every process) minus this
 * page's clock: the median over ten ticks of `Date.now()`, each caught by a
 * busy loop the moment it turns (so its 1 ms resolution does not count).
 */
window.p11WallOffset = () => {
  const offsets: number[] = [];
  for (let i = 0; i < 10; i++) {
    const start = Date.now();
    let wall = start;
    let at = now();
    while (wall === start) {
      at = now();
      wall = Date.now();
    }
    offsets.push(wall - at);
  }
  return offsets.sort((a, b) => a - b)[5]!;
};

window.p11Open = async (baseUrl, token, workspaceId, name, threadId) => {
  device = await Device.open(baseUrl, token, workspaceId, name);
  stopWatching = device.watch(threadId);
};

window.p11Write = async (ids, threadId, firstIndex, intervalMs) => {
  const writer = device!;
  if (firstIndex === 0) {
    await writer.engine.db.table('threads').put({ id: threadId, title: 'P11', project_id: null, created_at: 1, updated_at: 1 });
  }
  await paced(ids.length, intervalMs, (i) => writer.write(chatMessage(ids[i]!, threadId, firstIndex + i)));
};

window.p11WaitSeen = (pk, timeoutMs) => until(() => device!.reads.get(pk)?.seen != null, timeoutMs);

window.p11Marks = () => ({ writes: [...device!.writes], reads: [...device!.reads], pushes: [...device!.pushes] });

window.p11Close = async () => {
  stopWatching();
  await device?.close();
  device = null;
};

window.p11FloorConnect = (url) =>
  new Promise<void>((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error(`floor socket ${url} failed`));
    socket.onmessage = (event) => {
      const at = now();
      const frame = JSON.parse(String(event.data)) as { changes?: { pk: string }[] };
      for (const change of frame.changes ?? []) if (!floorReceived.has(change.pk)) floorReceived.set(change.pk, at);
    };
    floorSocket = socket;
  });

window.p11FloorPublish = (ids, threadId, firstIndex, intervalMs) =>
  paced(ids.length, intervalMs, (i) => {
    const pk = ids[i]!;
    const version = firstIndex + i + 1;
    floorSent.set(pk, now());
    const change = {
      server_version: version,
      table_name: 'messages',
      pk,
      operation: 'put',
      payload: chatMessage(pk, threadId, firstIndex + i),
      clock: 1,
      hlc: `${Date.now()}:0000:floor`,
      op_id: crypto.randomUUID(),
      device_id: 'floor',
      scope_change: false,
    };
    floorSocket!.send(JSON.stringify({ type: 'changes', from: version - 1, to: version, changes: [change] }));
  });

window.p11FloorWait = (pk, timeoutMs) => until(() => floorReceived.has(pk), timeoutMs);

window.p11FloorMarks = () => ({ sent: [...floorSent], received: [...floorReceived] });
