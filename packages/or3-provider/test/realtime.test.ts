/**
 * Realtime for OR3: devices push and pull through OR3's routes and the
 * adapter, and a second device is woken by the gateway's WebSocket instead
 * of polling. Measures push → wake-up frame → pulled change.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createOr3SyncRealtimeProvider } from '../src/client/realtime-provider.js';
import type { SyncChange, SyncProvider } from '../src/or3-types.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startOr3Host, type Or3Host } from './support/or3-host.js';
import { Or3Device } from './support/or3-device.js';

let gateway: TestGateway;
let host: Or3Host;

beforeAll(async () => {
  gateway = await startGateway();
  host = await startOr3Host(gateway.client);
});
afterAll(async () => {
  await host?.stop();
  await gateway?.stop();
});

/** A provider as the browser plugin makes it, signed in as `user`; `frames` records when wake-up frames arrive. */
function provider(user: string, frames: number[] = []): SyncProvider {
  return createOr3SyncRealtimeProvider({
    baseUrl: host.baseUrl,
    headers: host.as(user),
    fallbackPollMs: 60_000,
    openSocket(url, protocols) {
      const socket = new WebSocket(url, protocols);
      socket.on('message', () => frames.push(performance.now()));
      return socket;
    },
  });
}

async function workspaceOf(user: string): Promise<string> {
  const response = await fetch(`${host.baseUrl}/api/session`, { headers: host.as(user) });
  return ((await response.json()) as { workspaceId: string }).workspaceId;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

describe('realtime through the gateway WebSocket', () => {
  it('a push through the adapter wakes the other device, which pulls it well under a second', async () => {
    const workspaceId = await workspaceOf('rita');
    const frames: number[] = [];
    const [writer, reader] = [provider('rita'), provider('rita', frames)];
    const arrivals = new Map<string, number>();
    const unsubscribe = await reader.subscribe({ workspaceId }, [], (changes: SyncChange[]) => {
      for (const c of changes) arrivals.set(c.pk, performance.now());
    });
    const device = new Or3Device();
    // The subscription is live once a write made now reaches the reader.
    await writer.push({ scope: { workspaceId }, ops: [device.write('messages', 'warmup', { id: 'warmup' })] });
    await expect.poll(() => arrivals.has('warmup'), { timeout: 10_000 }).toBe(true);

    const wake: number[] = [];
    const pulled: number[] = [];
    for (let i = 0; i < 15; i += 1) {
      const pk = `m${i}`;
      const framesBefore = frames.length;
      const started = performance.now();
      await writer.push({ scope: { workspaceId }, ops: [device.write('messages', pk, { id: pk, text: `message ${i}` })] });
      await expect.poll(() => arrivals.has(pk), { timeout: 5_000, interval: 5 }).toBe(true);
      wake.push(frames[framesBefore]! - started);
      pulled.push(arrivals.get(pk)! - started);
    }
    unsubscribe();
    console.log(`or3sync realtime: push → wake-up frame median ${median(wake).toFixed(1)} ms, push → pulled change median ${median(pulled).toFixed(1)} ms (15 writes)`);
    expect(median(pulled)).toBeLessThan(1000);
  });

  it('two OR3 devices that push and pull through the adapter converge', async () => {
    const workspaceId = await workspaceOf('sam');
    const scope = { workspaceId };
    const write = fc.record({ device: fc.integer({ min: 0, max: 1 }), pk: fc.constantFrom('a', 'b', 'c'), del: fc.boolean(), text: fc.string({ maxLength: 8 }), pull: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(fc.array(write, { minLength: 1, maxLength: 10 }), async (writes) => {
        const table = `threads`;
        const run = Math.random().toString(36).slice(2, 8);
        const devices = [new Or3Device(), new Or3Device()];
        const providers = [provider('sam'), provider('sam')];
        const pullAll = async (i: number) => {
          const device = devices[i]!;
          for (let more = true; more; ) {
            const page = await providers[i]!.pull({ scope, cursor: device.cursor, limit: 1000 });
            device.applyChanges(page.changes.filter((c) => c.pk.startsWith(run)));
            device.cursor = page.nextCursor;
            more = page.hasMore;
          }
        };
        for (const w of writes) {
          const pk = `${run}-${w.pk}`;
          const op = devices[w.device]!.write(table, pk, w.del ? null : { id: pk, text: w.text });
          devices[w.device]!.settle(await providers[w.device]!.push({ scope, ops: [op] }));
          if (w.pull) await pullAll(w.device);
        }
        await pullAll(0);
        await pullAll(1);
        expect(devices[0]!.view()).toEqual(devices[1]!.view());
      }),
      { numRuns: 8 },
    );
  });
});
