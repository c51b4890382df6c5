/**
 * CPU time of the processes a benchmark started (its Chromium and its gateway), by kind, read
 * from Linux's `/proc` (user + system): where a first sync's CPU goes besides the page's main
 * thread. Chromium's IndexedDB backend runs in its browser process, so "browser" is mostly the
 * database's work; "renderer" is the page (its main thread and the threads that serve it).
 * On a machine without `/proc` every figure is absent (null).
 */
import { readdirSync, readFileSync } from 'node:fs';

export type ProcessCpu = Record<string, number>;

/** Seconds of CPU so far of every process under this one, summed by kind; null without `/proc`. */
export function processCpu(): ProcessCpu | null {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return null;
  }
  const ticksPerSecond = 100; // USER_HZ on Linux
  const parentOf = new Map<string, string>();
  const stats = new Map<string, { kind: string; seconds: number }>();
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces): state ppid ... utime(14) stime(15).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parentOf.set(pid, fields[1]!);
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      stats.set(pid, { kind: kindOf(command), seconds: (Number(fields[11]) + Number(fields[12])) / ticksPerSecond });
    } catch {
      // the process ended meanwhile
    }
  }
  const own = String(process.pid);
  const isMine = (pid: string): boolean => {
    for (let at = parentOf.get(pid), hops = 0; at && hops < 20; at = parentOf.get(at), hops++) if (at === own) return true;
    return false;
  };
  const cpu: ProcessCpu = {};
  for (const [pid, { kind, seconds }] of stats) if (isMine(pid)) cpu[kind] = (cpu[kind] ?? 0) + seconds;
  return cpu;
}

function kindOf(command: string): string {
  if (command.includes('or3-sync')) return 'gateway';
  const type = /--type=([a-z-]+)/.exec(command)?.[1];
  if (type === 'utility') return /NetworkService/.test(command) ? 'network' : 'utility';
  if (type) return type === 'renderer' ? 'renderer' : 'other';
  return /chrom/i.test(command) ? 'browser' : 'other';
}

/** CPU seconds spent between `before` and `after`, by kind. */
export function cpuSpent(before: ProcessCpu | null, after: ProcessCpu | null): ProcessCpu | null {
  if (!before || !after) return null;
  const spent: ProcessCpu = {};
  for (const [kind, seconds] of Object.entries(after)) spent[kind] = seconds - (before[kind] ?? 0);
  return spent;
}

/** "renderer 5.4 s, browser (IndexedDB) 6.8 s, ..." for the kinds that used at least 10 ms. */
export function describeCpu(spent: ProcessCpu | null): string {
  if (!spent) return 'not measured (no /proc)';
  const order = ['renderer', 'browser', 'network', 'gateway', 'utility', 'other'];
  const label = (kind: string) => (kind === 'browser' ? 'browser (IndexedDB)' : kind === 'network' ? 'network service' : kind);
  const parts = order.filter((kind) => (spent[kind] ?? 0) >= 0.01).map((kind) => `${label(kind)} ${spent[kind]!.toFixed(2)} s`);
  const total = Object.values(spent).reduce((sum, seconds) => sum + seconds, 0);
  return `${parts.join(', ')}; ${total.toFixed(2)} s in all`;
}
