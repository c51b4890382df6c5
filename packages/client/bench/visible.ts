/**
 * Write→visible on another device (figure P11, issue 28): two Chromium
 * contexts (two devices, each its own IndexedDB) synced to the real gateway
 * (release build when there is one, else debug; `OR3_SYNC_BIN` to choose)
 * over WebSockets. Device A writes N 200-character chat messages, one every
 * `--interval-ms`; device B watches the thread with a Dexie `liveQuery`, as a
 * chat view does. Measured per write: from the `put` call on A until B's live
 * query returns the row; p50 and p99 (goals ≤ 15 ms and ≤ 40 ms).
 *
 * The floor, in the same run and browser: the same frames sent from A's page
 * to B's page through the bare broadcast server of P3 (`fanout-floor.ts`): no
 * engine, no HTTP, auth, storage or IndexedDB; what a browser-to-browser hop
 * over WebSockets costs on this machine. The ratio is what or3-sync adds.
 *
 * Also printed (and recorded): where one write's time goes, stage by stage
 * (`visible-device.ts` stamps them from outside the engine), and the
 * gateway's own time per push from its `/metrics`.
 *
 *   npm run bench:visible -w packages/client               # 200 writes 50 ms apart
 *   npm run bench:visible -w packages/client -- --quick    # 20 writes
 *   npm run bench:visible -w packages/client -- --writes 500 --interval-ms 20
 */
import { bundlePage, launchChromium, median } from './chromium.js';
import { startFanoutFloor } from './fanout-floor.js';
import { startPageGateway } from './page-gateway.js';
import { resultsPath, writeFigureBlock, type FigureRow } from './results.js';
import type { ReaderMarks, WriterMarks } from './visible-device.js';

const quick = process.argv.includes('--quick');
const writes = flag('--writes') ?? (quick ? 20 : 200);
const intervalMs = flag('--interval-ms') ?? 50;
const WARM_UP = 5;
const P50_GOAL_MS = 15;
const P99_GOAL_MS = 40;
const WAIT_MS = 30_000;

function flag(name: string): number | null {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : null;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Sum and count of a summary or histogram in the gateway's `/metrics` (all label sets whose labels contain `match`). */
async function metric(baseUrl: string, name: string, match: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const total = (suffix: string) =>
    text
      .split('\n')
      .filter((line) => line.startsWith(`${name}_${suffix}`) && line.includes(match))
      .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
  return { sum: total('sum'), count: total('count') };
}

const ids = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`);

interface Stages {
  capture: number[];
  putResolves: number[];
  beforePush: number[];
  pushToFrame: number[];
  pushRoundTrip: number[];
  frameToEngine: number[];
  apply: number[];
  applyToSeen: number[];
  applyCommit: number[];
  commitToApplied: number[];
  commitToRequery: number[];
  requeryToSeen: number[];
  total: number[];
}

async function main(): Promise<void> {
  const gatewayForPage = await startPageGateway();
  const { server } = gatewayForPage;
  const floor = await startFanoutFloor();
  const browser = await launchChromium();
  try {
    const token = await server.token('p11-bench');
    const workspaceId = await server.createWorkspace(token, 'p11');
    const url = await gatewayForPage.serve(await bundlePage(new URL('./visible-page.ts', import.meta.url)));
    const [a, b] = await Promise.all(
      [0, 1].map(async () => {
        const page = await (await browser.newContext()).newPage();
        page.on('pageerror', (error) => console.error('page error:', error));
        await page.goto(url);
        return page;
      }),
    );
    // B's time on A's clock is B's minus `skew` (both through the system's wall clock).
    const skew = (await a!.evaluate(() => window.p11WallOffset())) - (await b!.evaluate(() => window.p11WallOffset()));
    const threadId = 'p11-thread';

    // The floor first: the same frames from A's page to B's through the bare broadcast server.
    await b!.evaluate((u) => window.p11FloorConnect(`${u}/subscribe`), floor.url);
    await a!.evaluate((u) => window.p11FloorConnect(`${u}/publish`), floor.url);
    for (const [batch, first] of [
      [ids('floor-warm', WARM_UP), 0],
      [ids('floor', writes), WARM_UP],
    ] as const) {
      await a!.evaluate(([i, t, f, ms]) => window.p11FloorPublish(i, t, f, ms), [batch, threadId, first, intervalMs] as const);
      if (!(await b!.evaluate(([pk, ms]) => window.p11FloorWait(pk, ms), [batch.at(-1)!, WAIT_MS] as const))) throw new Error('the floor lost a frame');
    }
    const floorMarks = await a!.evaluate(() => window.p11FloorMarks());
    const floorReceived = new Map((await b!.evaluate(() => window.p11FloorMarks())).received);
    const sent = new Map(floorMarks.sent);
    const floorLatency = ids('floor', writes).map((pk) => floorReceived.get(pk)! - skew - sent.get(pk)!);

    // The gateway: A writes, B's live query sees.
    await b!.evaluate(([u, t, ws, th]) => window.p11Open(u, t, ws, 'p11-b', th), [server.baseUrl, token, workspaceId, threadId] as const);
    await a!.evaluate(([u, t, ws, th]) => window.p11Open(u, t, ws, 'p11-a', th), [server.baseUrl, token, workspaceId, threadId] as const);
    const warm = ids('warm', WARM_UP);
    await a!.evaluate(([i, t, ms]) => window.p11Write(i, t, 0, ms), [warm, threadId, intervalMs] as const);
    if (!(await b!.evaluate(([pk, ms]) => window.p11WaitSeen(pk, ms), [warm.at(-1)!, WAIT_MS] as const))) throw new Error('B never saw the warm-up writes');
    const pushRoute = '/push';
    const pushBefore = await metric(server.baseUrl, 'or3_http_request_seconds', pushRoute);
    const socketPushBefore = await metric(server.baseUrl, 'or3_ws_push_seconds', '');
    const commitBefore = await metric(server.baseUrl, 'or3_sqlite_group_commit_seconds', '');
    const timed = ids('m', writes);
    await a!.evaluate(([i, t, f, ms]) => window.p11Write(i, t, f, ms), [timed, threadId, WARM_UP, intervalMs] as const);
    if (!(await b!.evaluate(([pk, ms]) => window.p11WaitSeen(pk, ms), [timed.at(-1)!, WAIT_MS] as const))) throw new Error('B never saw the last write');
    const pushAfter = await metric(server.baseUrl, 'or3_http_request_seconds', pushRoute);
    const socketPushAfter = await metric(server.baseUrl, 'or3_ws_push_seconds', '');
    const commitAfter = await metric(server.baseUrl, 'or3_sqlite_group_commit_seconds', '');
    const writer = await a!.evaluate(() => window.p11Marks());
    const reader = await b!.evaluate(() => window.p11Marks());
    await Promise.all([a!.evaluate(() => window.p11Close()), b!.evaluate(() => window.p11Close())]);

    const wrote = new Map<string, WriterMarks>(writer.writes);
    const read = new Map<string, ReaderMarks>(reader.reads);
    const stages: Stages = { capture: [], putResolves: [], beforePush: [], pushToFrame: [], pushRoundTrip: [], frameToEngine: [], apply: [], applyToSeen: [], applyCommit: [], commitToApplied: [], commitToRequery: [], requeryToSeen: [], total: [] };
    for (const pk of timed) {
      const w = wrote.get(pk);
      const r = read.get(pk);
      if (!w || !r || r.seen === null) throw new Error(`write ${pk} was not seen on B`);
      stages.total.push(r.seen - skew - w.put);
      if (w.committed === null) throw new Error(`write ${pk}: no capture transaction seen`);
      stages.capture.push(w.committed - w.put);
      stages.putResolves.push(w.captured - w.committed);
      if (w.pushStart !== null && w.pushEnd !== null) {
        stages.beforePush.push(w.pushStart - w.committed);
        stages.pushRoundTrip.push(w.pushEnd - w.pushStart);
        if (r.frame !== null) stages.pushToFrame.push(r.frame - skew - w.pushStart);
      }
      if (r.frame !== null && r.deliver !== null) stages.frameToEngine.push(r.deliver - r.frame);
      if (r.deliver !== null && r.applied !== null) stages.apply.push(r.applied - r.deliver);
      if (r.applied !== null) stages.applyToSeen.push(r.seen - r.applied);
      if (r.committed !== null) {
        if (r.deliver !== null) stages.applyCommit.push(r.committed - r.deliver);
        if (r.applied !== null) stages.commitToApplied.push(r.applied - r.committed);
        if (r.requery !== null) {
          stages.commitToRequery.push(r.requery - r.committed);
          stages.requeryToSeen.push(r.seen - r.requery);
        }
      }
    }
    const pushOps = timed.map((pk) => wrote.get(pk)!.pushOps ?? 0);
    const pushes = new Set(timed.map((pk) => wrote.get(pk)!.pushStart)).size;
    // Pushes over HTTP and on the socket (a gateway that takes them there) alike.
    const serverPushCount = pushAfter.count - pushBefore.count + (socketPushAfter.count - socketPushBefore.count);
    const serverPushSum = pushAfter.sum - pushBefore.sum + (socketPushAfter.sum - socketPushBefore.sum);
    const serverPushMs = (serverPushSum / Math.max(1, serverPushCount)) * 1000;
    const commitMs = ((commitAfter.sum - commitBefore.sum) / Math.max(1, commitAfter.count - commitBefore.count)) * 1000;
    report({
      stages,
      floorLatency,
      skew,
      pushes,
      pushOps,
      serverPushMs,
      serverPushes: serverPushCount,
      socketPushes: socketPushAfter.count - socketPushBefore.count,
      commitMs,
      version: browser.version(),
      binary: gatewayForPage.binary,
      floorBinary: floor.binary,
    });
  } finally {
    await browser.close();
    floor.stop();
    await gatewayForPage.stop();
  }
}

interface Outcome {
  stages: Stages;
  floorLatency: number[];
  skew: number;
  pushes: number;
  pushOps: number[];
  serverPushMs: number;
  serverPushes: number;
  /** Of them, pushes on the WebSocket. */
  socketPushes: number;
  commitMs: number;
  version: string;
  binary: string;
  floorBinary: string;
}

const ms = (value: number) => `${value.toFixed(value < 10 ? 2 : 1)} ms`;

function report(o: Outcome): void {
  const { stages } = o;
  const p50 = percentile(stages.total, 50);
  const p99 = percentile(stages.total, 99);
  const floor50 = percentile(o.floorLatency, 50);
  const floor99 = percentile(o.floorLatency, 99);
  const floorName = `the same frames from A's page to B's through a bare tokio-tungstenite broadcast server (P3's floor), no engine, HTTP, storage or IndexedDB`;
  const rows: FigureRow[] = [
    { figure: `write→visible p50, ${writes} writes ${intervalMs} ms apart, put on A until B's liveQuery returns the row`, measured: ms(p50), baseline: `${ms(floor50)} (${floorName})`, ratio: p50 / floor50, goal: `≤ ${P50_GOAL_MS} ms`, pass: p50 <= P50_GOAL_MS },
    { figure: `write→visible p99, ${writes} writes ${intervalMs} ms apart, put on A until B's liveQuery returns the row`, measured: ms(p99), baseline: `${ms(floor99)} (${floorName})`, ratio: p99 / floor99, goal: `≤ ${P99_GOAL_MS} ms`, pass: p99 <= P99_GOAL_MS },
  ];
  const stageLine = [
    `capture (put until its transaction completes) ${ms(median(stages.capture))}`,
    `wait before the push (capture complete until the engine calls push) ${ms(median(stages.beforePush))}`,
    `push request until the frame reaches B's socket (HTTP or A's socket, auth, commit, fanout, loopback) ${ms(median(stages.pushToFrame))}`,
    `frame until the engine gets the batch (parse, queue) ${ms(median(stages.frameToEngine))}`,
    `apply (the engine's onChanges, its transaction) ${ms(median(stages.apply))}`,
    `applied until B's liveQuery returns the row ${ms(median(stages.applyToSeen))}`,
  ].join('; ');
  const receiving = `the apply transaction committed ${ms(median(stages.applyCommit))} after the engine got the batch; the engine's onChanges resolved ${ms(median(stages.commitToApplied))} after that commit (Dexie runs its own complete handlers first, and its liveQuery cache starts the re-query in them); the liveQuery ran its query again ${ms(median(stages.commitToRequery))} after the commit and returned the row ${ms(median(stages.requeryToSeen))} later`;
  const context = `put resolves ${ms(median(stages.putResolves))} after its transaction completes; the push's round trip ${ms(median(stages.pushRoundTrip))}; the gateway's own time per push ${ms(o.serverPushMs)} (mean of ${o.serverPushes}, ${o.socketPushes} of them on the WebSocket; or3_http_request_seconds, or3_ws_push_seconds), per group commit ${ms(o.commitMs)} (mean, or3_sqlite_group_commit_seconds); ${o.pushes} pushes for ${writes} writes (ops per push: median ${median(o.pushOps)}, most ${Math.max(...o.pushOps)})`;
  const heading = `write→visible on another device, the gateway (${o.binary}) and two Chromium ${o.version} contexts over WebSockets, ${writes} writes ${intervalMs} ms apart${quick ? ' (--quick)' : ''}`;
  console.log(heading);
  console.log(`write→visible p50 ${ms(p50)}  p99 ${ms(p99)}  floor p50 ${ms(floor50)}  p99 ${ms(floor99)}  ratio p50 ${(p50 / floor50).toFixed(2)}  p99 ${(p99 / floor99).toFixed(2)}`);
  console.log(`stages (median): ${stageLine}`);
  console.log(`B's side (median): ${receiving}`);
  console.log(`context: ${context}`);
  console.log(`clock offset between the two contexts: ${o.skew.toFixed(3)} ms (corrected)`);
  const path = resultsPath(process.argv);
  if (path) {
    const flags = process.argv.slice(2).filter((arg, i, all) => arg !== '--results' && all[i - 1] !== '--results');
    const command = `npm run bench:visible -w packages/client${flags.length ? ` -- ${flags.join(' ')}` : ''}`;
    writeFigureBlock(path, 'P11', heading, command, rows, [
      `Device A and device B are two contexts of one Chromium (each its own IndexedDB), each with attachSync on an app database (threads, messages) and engine.start() against the gateway (dev auth, SQLite WAL, synchronous=full), realtime over a WebSocket. A writes ${writes} messages of 200 characters into one thread (${WARM_UP} untimed first); B watches the thread with a Dexie liveQuery. Latency: from the put call on A until B's liveQuery first returns the row, both on performance.timeOrigin + now() (the contexts' clocks differ by ${o.skew.toFixed(2)} ms, measured in each page against the system's wall clock, Date.now(), at the moment it ticks, and corrected).`,
      `The floor ran first in the same browser: A's page sent each write's changes frame (the gateway's shape, the same row) to ${o.floorBinary.replace(/.*\/target\//, 'target/')} --serve-fanout-floor, which broadcast it to B's page (stamped in onmessage).`,
      `Where one write's time went (medians over the writes; each stage stamped from outside the engine by wrapping its provider and WebSocket): ${stageLine}.`,
      `B's side (medians; the commit stamped by a listener added as the transaction opens, the re-query by the live query's own querier): ${receiving}.`,
      `Context: ${context}.`,
    ]);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
