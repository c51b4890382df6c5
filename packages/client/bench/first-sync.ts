/**
 * A fresh device's first sync of a big workspace into Chromium (figure P9,
 * issue 18): the real `or3-sync` gateway (release build when there is one,
 * else debug; `OR3_SYNC_BIN` to choose) on SQLite holds N records (1%
 * threads, 99% messages of about 300 bytes); a page in Chromium attaches sync
 * to an empty app database and runs `engine.sync()` until it is caught up.
 * Measured, against one raw Dexie `bulkPut` of the same rows in the same page
 * and run:
 *
 * - rows/s of the first sync ÷ rows/s of the raw bulkPut (goal ≥ 0.95, issue 28; it was 0.60);
 * - the page's peak JS heap during the sync, sampled every 100 ms through
 *   the DevTools protocol (`Runtime.getHeapUsage`, used bytes; goal ≤ 250 MB);
 * - the longest main-thread task during the sync (`PerformanceObserver`,
 *   `longtask`) and how many went over 200 ms (goal: none).
 *
 *   npm run bench:first-sync -w packages/client               # 1 000 000 records, 1 round
 *   npm run bench:first-sync -w packages/client -- --quick    # 5 000 records
 *   npm run bench:first-sync -w packages/client -- --records 200000 --rounds 2
 *
 * Seeding the server (pushes of 500 ops, two in flight) is not timed. Each
 * round runs the raw bulkPut first, then a garbage collection, then the sync.
 */
import { writeFileSync } from 'node:fs';
import type { CDPSession } from 'playwright-core';
import type { PushResponse } from '@or3/sync-protocol';
import type { TestServer } from '../test/support/server.js';
import { inChromium, median } from './chromium.js';
import { firstSyncRecord } from './first-sync-rows.js';
import type { FirstSyncRun, RawRun } from './first-sync-rounds.js';
import { startPageGateway } from './page-gateway.js';
import { cpuSpent, describeCpu, processCpu, type ProcessCpu } from './process-cpu.js';
import { resultsPath, sizeFlags, writeFigureBlock, type FigureRow } from './results.js';

const { quick, records, rounds, rate } = sizeFlags(process.argv, { records: 1_000_000, rounds: 1, quickRecords: 5_000 });
/** Issue 28: ≤ 60 MB at 100 000 records, ≤ 250 MB at 1 000 000. */
const HEAP_GOAL_MB = records <= 100_000 ? 60 : 250;
const RATIO_GOAL = 0.95;
const TASK_GOAL_MS = 200;
const SAMPLE_MS = 100;
/** `--snapshot-limit N`: the page size the client asks for (the server's default when absent). */
const snapshotLimit = flagValue('--snapshot-limit');
/** `--cpu-profile FILE`: the page's CPU profile of the (last) sync, for DevTools or speedscope. */
const profilePath = flagValue('--cpu-profile');

function flagValue(name: string): string | null {
  const at = process.argv.indexOf(name);
  return at > 0 ? (process.argv[at + 1] ?? null) : null;
}

/** Pushes the records to `workspaceId`, 500 ops per request (the server's most), 2 requests in flight. */
async function seed(server: TestServer, token: string, workspaceId: string): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < records) {
      const from = next;
      next = Math.min(records, next + 500);
      const ops = [];
      for (let i = from; i < next; i++) {
        const r = firstSyncRecord(i, records);
        ops.push({ op_id: r.op_id, table_name: r.table_name, operation: 'put', pk: r.pk, payload: r.payload, clock: r.clock, hlc: r.hlc, device_id: r.device_id });
      }
      const { status, body } = await server.api<PushResponse>(token, 'POST', `/v1/workspaces/${workspaceId}/push`, { ops });
      const bad = body?.results?.find((r) => r.status !== 'applied');
      if (status !== 200 || bad) throw new Error(`seeding: HTTP ${status} ${JSON.stringify(bad ?? body)}`);
    }
  };
  await Promise.all([worker(), worker()]);
}

/** Samples the page's used JS heap every `SAMPLE_MS` until `stop()`, which returns the samples (bytes). */
function sampleHeap(cdp: CDPSession): { stop(): Promise<{ peak: number; samples: number; longestGapMs: number }> } {
  let running = true;
  const sizes: number[] = [];
  let longestGapMs = 0;
  const loop = (async () => {
    let last = performance.now();
    while (running) {
      const { usedSize } = await cdp.send('Runtime.getHeapUsage');
      sizes.push(usedSize);
      const now = performance.now();
      longestGapMs = Math.max(longestGapMs, now - last);
      last = now;
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { peak: Math.max(0, ...sizes), samples: sizes.length, longestGapMs };
    },
  };
}

interface Round {
  raw: RawRun;
  /** The same rows in the chunks a first sync writes (no task over a chunk's clone). */
  rawChunked: RawRun;
  sync: FirstSyncRun;
  /** Used heap after a GC, before the sync (bytes). */
  heapBefore: number;
  heapPeak: number;
  rawHeapPeak: number;
  samples: number;
  longestGapMs: number;
  /** Main-thread time during the sync (CDP Performance.getMetrics TaskDuration, ScriptDuration), ms. */
  mainThread: { task: number; script: number };
  /** CPU seconds of the browser's processes and the gateway during the raw bulkPut and during the sync, by kind. */
  rawCpu: ProcessCpu | null;
  syncCpu: ProcessCpu | null;
}

/** Cumulative main-thread task and script time of the page, in seconds. */
async function mainThreadSeconds(cdp: CDPSession): Promise<{ task: number; script: number }> {
  const { metrics } = await cdp.send('Performance.getMetrics');
  const value = (name: string) => metrics.find((m) => m.name === name)?.value ?? 0;
  return { task: value('TaskDuration'), script: value('ScriptDuration') };
}

const mb = (bytes: number) => bytes / 1e6;

async function main(): Promise<void> {
  const gatewayForPage = await startPageGateway();
  const { server } = gatewayForPage;
  try {
    const token = await server.token('p9-bench');
    const workspaceId = await server.createWorkspace(token, 'p9');
    const seeding = performance.now();
    await seed(server, token, workspaceId);
    const seeded = performance.now() - seeding;
    console.log(`seeded ${records} records in ${(seeded / 1000).toFixed(1)} s (not timed)`);
    const { result, version } = await inChromium(
      new URL('./first-sync-page.ts', import.meta.url),
      async (page) => {
        const cdp = await page.context().newCDPSession(page);
        await cdp.send('Performance.enable');
        if (profilePath) await cdp.send('Profiler.enable');
        const probe = await page.evaluate(() => window.p9ProbeLongTasks());
        const out: Round[] = [];
        for (let n = 0; n < rounds; n++) {
          const rawCpuBefore = processCpu();
          const rawSampler = sampleHeap(cdp);
          const raw = await page.evaluate(([r, name]) => window.p9RawBulkPut(r, name), [records, `p9-raw-${n}`] as const);
          const rawHeap = await rawSampler.stop();
          const rawCpu = cpuSpent(rawCpuBefore, processCpu());
          await cdp.send('HeapProfiler.collectGarbage');
          const rawChunked = await page.evaluate(([r, name]) => window.p9RawBulkPut(r, name, true), [records, `p9-raw-chunked-${n}`] as const);
          await cdp.send('HeapProfiler.collectGarbage');
          const { usedSize: heapBefore } = await cdp.send('Runtime.getHeapUsage');
          const busyBefore = await mainThreadSeconds(cdp);
          const sampler = sampleHeap(cdp);
          if (profilePath) await cdp.send('Profiler.start');
          const syncCpuBefore = processCpu();
          const sync = await page.evaluate(([url, t, ws, r, l]) => window.p9FirstSync(url, t, ws, r, l), [server.baseUrl, token, workspaceId, records, snapshotLimit === null ? null : Number(snapshotLimit)] as const);
          const syncCpu = cpuSpent(syncCpuBefore, processCpu());
          const heap = await sampler.stop();
          if (profilePath) writeFileSync(profilePath, JSON.stringify((await cdp.send('Profiler.stop')).profile));
          const busy = await mainThreadSeconds(cdp);
          const mainThread = { task: (busy.task - busyBefore.task) * 1000, script: (busy.script - busyBefore.script) * 1000 };
          out.push({ raw, rawChunked, sync, heapBefore, heapPeak: heap.peak, rawHeapPeak: rawHeap.peak, samples: heap.samples, longestGapMs: heap.longestGapMs, mainThread, rawCpu, syncCpu });
          const longest = Math.max(0, ...sync.longTasks);
          console.log(
            `  round ${n + 1}: first sync ${(sync.sync / 1000).toFixed(1)} s, raw bulkPut ${(raw.raw / 1000).toFixed(1)} s (in chunks ${(rawChunked.raw / 1000).toFixed(1)} s, longest task ${Math.max(0, ...rawChunked.longTasks).toFixed(0)} ms); ` +
              `heap ${mb(heapBefore).toFixed(1)} MB before, peak ${mb(heap.peak).toFixed(1)} MB (${heap.samples} samples, longest gap ${heap.longestGapMs.toFixed(0)} ms); ` +
              `longest task ${longest.toFixed(0)} ms, ${sync.longTasks.filter((d) => d > TASK_GOAL_MS).length} over ${TASK_GOAL_MS} ms, ${sync.longTasks.length} over 50 ms`,
          );
          console.log(`    main thread busy ${((mainThread.task / sync.sync) * 100).toFixed(0)}% of the sync (script ${((mainThread.script / sync.sync) * 100).toFixed(0)}%)`);
          console.log(`    CPU during the raw bulkPut: ${describeCpu(rawCpu)}`);
          console.log(`    CPU during the sync: ${describeCpu(syncCpu)}`);
          for (const frame of sync.longFrames) console.log(`    long frame ${frame}`);
        }
        return { probe, rounds: out };
      },
      gatewayForPage.serve,
    );
    report(result.rounds, result.probe, version, gatewayForPage.binary, seeded);
  } finally {
    await gatewayForPage.stop();
  }
}

function report(result: Round[], probe: number, version: string, binary: string, seeded: number): void {
  const ratio = median(result.map((r) => r.raw.raw / r.sync.sync));
  const chunkedRatio = median(result.map((r) => r.rawChunked.raw / r.sync.sync));
  const peak = Math.max(...result.map((r) => r.heapPeak));
  const before = median(result.map((r) => r.heapBefore));
  const tasks = result.flatMap((r) => r.sync.longTasks);
  const longest = Math.max(0, ...tasks);
  const over = tasks.filter((d) => d > TASK_GOAL_MS).length;
  const rawLongest = Math.max(0, ...result.flatMap((r) => r.raw.longTasks));
  const rows: FigureRow[] = [
    {
      figure: 'first sync from the gateway, rows/s until caught up',
      measured: rate(median(result.map((r) => r.sync.sync))),
      baseline: `${rate(median(result.map((r) => r.raw.raw)))} (one raw Dexie bulkPut of the same rows, same schema)`,
      ratio,
      goal: `ratio ≥ ${RATIO_GOAL.toFixed(2)}`,
      pass: ratio >= RATIO_GOAL,
    },
    {
      figure: 'first sync from the gateway, rows/s until caught up, against a raw write that keeps the page responsive',
      measured: rate(median(result.map((r) => r.sync.sync))),
      baseline: `${rate(median(result.map((r) => r.rawChunked.raw)))} (the same rows, same schema, one transaction, in the chunks a first sync writes: 250 rows, four in flight; its longest task ${Math.max(0, ...result.flatMap((r) => r.rawChunked.longTasks)).toFixed(0)} ms)`,
      ratio: chunkedRatio,
      goal: 'reported',
      pass: true,
    },
    {
      figure: 'peak JS heap of the page during the sync (CDP Runtime.getHeapUsage, every 100 ms)',
      measured: `${mb(peak).toFixed(1)} MB`,
      baseline: `${mb(before).toFixed(1)} MB (the page's heap after a GC, before the sync)`,
      ratio: peak / before,
      goal: `≤ ${HEAP_GOAL_MB} MB`,
      pass: mb(peak) <= HEAP_GOAL_MB,
    },
    {
      figure: `longest main-thread task during the sync (longtask observer); tasks over ${TASK_GOAL_MS} ms`,
      measured: `${longest.toFixed(0)} ms; ${over} over ${TASK_GOAL_MS} ms`,
      baseline: `${rawLongest.toFixed(0)} ms (the longest task of the raw bulkPut)`,
      ratio: rawLongest > 0 ? longest / rawLongest : 0,
      goal: `none over ${TASK_GOAL_MS} ms`,
      pass: over === 0,
    },
  ];
  const heading = `first sync of ${records} records from the gateway (${binary}) into Chromium ${version} IndexedDB, ${rounds === 1 ? '1 round' : `median of ${rounds} rounds`}${quick ? ' (--quick)' : ''}`;
  console.log(heading);
  console.log(`${rows[0]!.figure}  ${rows[0]!.measured}  raw bulkPut ${rows[0]!.baseline.split(' (')[0]}  ratio ${ratio.toFixed(2)} (goal >= ${RATIO_GOAL.toFixed(2)})`);
  console.log(`against the raw write in chunks ${rows[1]!.baseline.split(' (')[0]}  ratio ${chunkedRatio.toFixed(2)}`);
  console.log(`peak JS heap during the sync ${rows[2]!.measured} (before ${rows[2]!.baseline.split(' (')[0]}; goal <= ${HEAP_GOAL_MB} MB)`);
  console.log(`longest task during the sync ${longest.toFixed(0)} ms, ${over} over ${TASK_GOAL_MS} ms (raw bulkPut's longest ${rawLongest.toFixed(0)} ms)`);
  const path = resultsPath(process.argv);
  if (path) {
    const flags = process.argv.slice(2).filter((arg, i, all) => arg !== '--results' && all[i - 1] !== '--results');
    const command = `npm run bench:first-sync -w packages/client${flags.length ? ` -- ${flags.join(' ')}` : ''}`;
    const r = result[0]!;
    writeFigureBlock(path, 'P9', heading, command, rows, [
      `The gateway (dev auth, SQLite WAL, synchronous=full) holds ${records} records, 1% threads and 99% messages of about 300 bytes of JSON, pushed in batches of 500 before the page starts (${(seeded / 1000).toFixed(1)} s, not timed). The page attaches sync to an empty app database (attachSync, as an app does) and times engine.sync() until it returns caught up: snapshot pages of ${snapshotLimit ?? 1000} over HTTP on loopback, JSON parsing, the writes, the pull. Every record is checked stored, the outbox empty, the cursor set.`,
      `Each round runs the raw bulkPut first (its rows built before its clock starts; its peak heap ${mb(r.rawHeapPeak).toFixed(0)} MB), then a GC (CDP HeapProfiler.collectGarbage), the raw write in chunks and a GC, then the sync. The heap is sampled from Node through a CDP session (${r.samples} samples, the longest gap between two ${r.longestGapMs.toFixed(0)} ms); MB = 10^6 bytes. A 120 ms busy loop before the rounds showed up as a ${probe.toFixed(0)} ms long task, so the observer works.`,
      `The main thread was busy ${((r.mainThread.task / r.sync.sync) * 100).toFixed(0)}% of the sync (CDP Performance.getMetrics TaskDuration); the rest it waited on IndexedDB (the snapshot pages are fetched and parsed two ahead).`,
      `CPU of the processes the bench started (/proc, user + system; Chromium's IndexedDB runs in its browser process): during the raw bulkPut ${describeCpu(r.rawCpu)}; during the sync ${describeCpu(r.syncCpu)}.`,
    ]);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
