/** How the long mode prints a seed: one line, or a failure in full with its replay command. */
import type { SeedReport } from './run-seed.js';

/** A failure, in full, with its replay command. */
export function formatFailure(report: SeedReport): string {
  return [
    `seed ${report.seed} FAILED (${report.store}, ${(report.durationMs / 1000).toFixed(1)} s)`,
    ...report.violations.map((v) => `  [${v.rule}] ${v.detail}`),
    `  last steps:`,
    ...report.trace.map((line) => `    ${line}`),
    ...Object.entries(report.shapes).map(([name, shape]) => `  ${name}: ${shape}; ${JSON.stringify(report.devices[name])}`),
    `  proxy: ${JSON.stringify(report.proxy)}`,
    `  server log tail:\n${report.serverLogTail.split('\n').slice(-15).map((l) => `    ${l}`).join('\n')}`,
    `  replay: ${report.replay}`,
  ].join('\n');
}

/** One line per seed: outcome, time, and what it went through. */
export function formatSummaryLine(report: SeedReport): string {
  const p = report.proxy;
  return (
    `seed ${report.seed} ${report.ok ? 'ok' : 'FAILED'} ${(report.durationMs / 1000).toFixed(1)}s ` +
    `ops ${report.opsSent} acked ${report.opsAcknowledged} log ${report.logLength} kills ${report.serverKills} gc ${report.gcPasses} ` +
    `req ${p.requests} delay ${p.delay} drop_req ${p.drop_request} drop_resp ${p.drop_response} dup ${p.duplicate} 503 ${p.unavailable} ` +
    `unreachable ${p.upstream_unreachable} ws ${p.sockets_opened}/${p.sockets_cut}` +
    (report.nodes > 1 ? ` | ${report.nodes} nodes: ${clusterLine(report)}` : '')
  );
}

/** A cluster run's faults, lane moves and slowest catch-ups. */
function clusterLine(report: SeedReport): string {
  const f = report.faults;
  const slowest = Object.entries(f.slowestCatchUpMs)
    .map(([kind, ms]) => `${kind} ${ms}`)
    .join(' ');
  return `listen cuts ${f.cut_listen} pg restarts ${f.restart_postgres} pauses ${f.pause_node} moves ${report.laneMoves} catch-up ms [${slowest}]`;
}
