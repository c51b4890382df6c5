/**
 * The random things a device's user does, drawn from the seed: create, edit,
 * move between projects and delete threads, append messages to shared threads (alone or several in
 * one transaction), edit and delete them (one by one, or a thread's at once
 * with `modify` and a collection delete), put and delete keys of a small
 * shared `kv` pool or clear it (hard deletes, many conflicts), go offline, reload the
 * page, and ask for a sync. Each action goes through the ordinary Dexie API
 * of the device's engine, as an app's would.
 */
import type { Prng } from './prng.js';
import type { SimulatedDevice } from './simulated-device.js';

export type DeviceAction =
  | 'create_thread'
  | 'edit_thread'
  | 'delete_thread'
  | 'move_thread'
  | 'append_message'
  | 'append_messages_in_one_transaction'
  | 'edit_message'
  | 'delete_message'
  | 'edit_thread_messages'
  | 'delete_thread_messages'
  | 'put_kv'
  | 'delete_kv'
  | 'clear_kv'
  | 'go_offline'
  | 'reload'
  | 'sync_now';

export const DEVICE_ACTION_WEIGHTS: Readonly<Record<DeviceAction, number>> = {
  create_thread: 6,
  edit_thread: 8,
  delete_thread: 3,
  move_thread: 2,
  append_message: 16,
  append_messages_in_one_transaction: 4,
  edit_message: 7,
  delete_message: 4,
  edit_thread_messages: 2,
  delete_thread_messages: 1,
  put_kv: 8,
  delete_kv: 4,
  clear_kv: 1,
  go_offline: 3,
  reload: 3,
  sync_now: 4,
};

/** Projects a thread may belong to (null: none). */
const PROJECTS = [null, 'p1', 'p2'];

/** Keys of the shared kv pool: few, so devices collide on them. */
const KV_KEYS = ['k0', 'k1', 'k2', 'k3', 'k4'];

type Row = Record<string, unknown>;

/** Fresh ids per device, deterministic for a seed. */
export class IdSource {
  private readonly counters = new Map<string, number>();

  next(device: string, kind: string): string {
    const n = (this.counters.get(`${device}/${kind}`) ?? 0) + 1;
    this.counters.set(`${device}/${kind}`, n);
    return `${device}-${kind}${n}`;
  }
}

/**
 * Performs `action` on `device` and says what it did, for the trace. Every
 * choice comes from `prng` (the rows to pick from come from the device's own
 * database, as a user picks from what their screen shows).
 */
export async function performDeviceAction(
  device: SimulatedDevice,
  action: DeviceAction,
  prng: Prng,
  ids: IdSource,
): Promise<string> {
  // The user acts in one of the device's tabs.
  const engine = device.tab(prng.int(device.tabCount));
  const db = engine.db;
  const threads = db.table('threads');
  const messages = db.table('messages');
  const kv = db.table('kv');
  const liveThreads = async () => (await threads.toArray()).filter((t: Row) => t.deleted !== true) as Row[];
  const liveMessages = async () => (await messages.toArray()).filter((m: Row) => m.deleted !== true) as Row[];
  // Draw everything up front, so the stream does not depend on what the database holds.
  const r1 = prng.next();
  const r2 = prng.next();
  const count = prng.between(2, 4);
  const word = prng.hex(6);
  const choose = <T>(items: T[], r: number): T | undefined => items[Math.floor(r * items.length)];

  switch (action) {
    case 'create_thread': {
      const id = ids.next(device.name, 't');
      // A device that syncs one project makes its threads there.
      const project = device.projectId ?? choose(PROJECTS, r2)!;
      await threads.put({ id, title: `thread ${word}`, project_id: project });
      return `create thread ${id} in ${project}`;
    }
    case 'edit_thread': {
      const thread = choose(await liveThreads(), r1);
      if (!thread) return 'edit thread: none';
      await threads.update(thread.id as string, { title: `title ${word}` });
      return `edit thread ${String(thread.id)}`;
    }
    case 'move_thread': {
      const thread = choose(await liveThreads(), r1);
      if (!thread) return 'move thread: none';
      const others = PROJECTS.filter((p) => p !== (thread.project_id ?? null));
      const project = choose(others, r2)!;
      await threads.update(thread.id as string, { project_id: project });
      return `move thread ${String(thread.id)} to ${project}`;
    }
    case 'delete_thread': {
      const thread = choose(await liveThreads(), r1);
      if (!thread) return 'delete thread: none';
      await threads.delete(thread.id as string);
      return `delete thread ${String(thread.id)}`;
    }
    case 'append_message':
    case 'append_messages_in_one_transaction': {
      const thread = choose(await liveThreads(), r1);
      if (!thread) return `${action}: no thread`;
      const n = action === 'append_message' ? 1 : count;
      const appended: string[] = [];
      await db.transaction('rw', messages, async () => {
        const inThread = (await messages.where('thread_id').equals(thread.id as string).toArray()) as Row[];
        let index = inThread.reduce((max, m) => Math.max(max, Number(m.index)), -1) + 1;
        const rows: Row[] = [];
        for (let i = 0; i < n; i++) {
          const id = ids.next(device.name, 'm');
          appended.push(`${id}@${index}`);
          rows.push({ id, thread_id: thread.id, index: index++, role: 'user', content: `message ${word}/${i}` });
        }
        if (rows.length === 1) await messages.put(rows[0]!);
        else await messages.bulkPut(rows);
      });
      return `append to ${String(thread.id)}: ${appended.join(' ')}`;
    }
    case 'edit_message': {
      const message = choose(await liveMessages(), r1);
      if (!message) return 'edit message: none';
      await messages.update(message.id as string, { content: `edited ${word}` });
      return `edit message ${String(message.id)}`;
    }
    case 'delete_message': {
      const message = choose(await liveMessages(), r1);
      if (!message) return 'delete message: none';
      await messages.delete(message.id as string);
      return `delete message ${String(message.id)}`;
    }
    case 'edit_thread_messages':
    case 'delete_thread_messages': {
      const thread = choose(await liveThreads(), r1);
      if (!thread) return `${action}: no thread`;
      const inThread = messages.where('thread_id').equals(thread.id as string);
      const n =
        action === 'edit_thread_messages' ? await inThread.modify({ content: `bulk edit ${word}` }) : await inThread.delete();
      return `${action} ${String(thread.id)}: ${n}`;
    }
    case 'clear_kv':
      await kv.clear();
      return 'clear kv';
    case 'put_kv': {
      const id = choose(KV_KEYS, r1)!;
      await kv.put({ id, value: `${device.name}:${word}`, n: Math.floor(r2 * 1000) });
      return `put kv ${id}`;
    }
    case 'delete_kv': {
      const id = choose(KV_KEYS, r1)!;
      await kv.delete(id);
      return `delete kv ${id}`;
    }
    case 'go_offline':
      device.setOnline(false);
      return 'go offline';
    case 'reload': {
      const tab = prng.int(device.tabCount);
      await device.reload(tab);
      return `reload tab ${tab}`;
    }
    case 'sync_now': {
      const result = await engine.sync();
      return `sync: pushed ${result.pushed}, pulled ${result.pulled}${result.error ? `, error ${result.error}` : ''}`;
    }
  }
}
