/**
 * The bare broadcast server of figure P3 (`bench/src/fanout_floor.rs`, run as
 * `or3-bench --serve-fanout-floor`), for the client figures that need the
 * machine's floor: a frame sent to `/publish` goes to every other socket, with
 * no HTTP, auth, storage or protocol. The release `or3-bench` when there is
 * one, else debug (`OR3_BENCH_BIN` to choose).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** What the floor prints before its address (`fanout_floor::LISTENING`). */
const LISTENING = 'fanout floor listening on ';

export interface FanoutFloor {
  /** `ws://127.0.0.1:PORT`. */
  url: string;
  binary: string;
  stop(): void;
}

export async function startFanoutFloor(): Promise<FanoutFloor> {
  const target = join(fileURLToPath(new URL('../../..', import.meta.url)), 'target');
  const binary =
    process.env.OR3_BENCH_BIN ?? [join(target, 'release/or3-bench'), join(target, 'debug/or3-bench')].find((b) => existsSync(b));
  if (!binary || !existsSync(binary)) {
    throw new Error('or3-bench not found: build it first (cargo build --release -p or3-bench) or set OR3_BENCH_BIN');
  }
  const child = spawn(binary, ['--serve-fanout-floor'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the fanout floor did not start within 10 s')), 10_000);
    child.once('exit', (code) => reject(new Error(`the fanout floor exited (${code})`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith(LISTENING)) return;
      clearTimeout(timer);
      resolve(line.slice(LISTENING.length).trim());
    });
  });
  return { url, binary, stop: () => void child.kill('SIGKILL') };
}
