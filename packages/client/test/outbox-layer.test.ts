/**
 * The outbox has one owner: no client source outside `src/outbox/` names its
 * store or reads an op's stored state columns (as `crates/sync-server/tests/layers.rs`
 * keeps the server's layers apart). The package index may re-export the store's
 * name from the outbox module for apps, and nothing else.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src', import.meta.url));

const FORBIDDEN: [string, RegExp][] = [
  ['names the outbox store', /OUTBOX_TABLE|_or3sync_outbox/],
  ['queries ops by their stored status', /where\(\s*['"]status['"]\s*\)/],
  ['compares or writes a raw op status', /status\s*(===|!==|:)\s*['"](pending|failed|held)['"]/],
  ['reads or writes the stored sent flag', /\.sent\b|\bsent:\s*[01]\b/],
];

/** The package index re-exports the store's name for apps: that line only. */
const REEXPORT = /^export \{[^}]*\} from '\.\/outbox\/index\.js';$/;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

describe('the outbox layer', () => {
  it('nothing outside src/outbox touches the outbox store or an op state column', () => {
    const offences: string[] = [];
    const files = sources(SRC).filter((path) => !relative(SRC, path).startsWith('outbox'));
    expect(files.length).toBeGreaterThan(20);
    for (const path of files) {
      readFileSync(path, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (REEXPORT.test(line.trim())) return;
          for (const [what, pattern] of FORBIDDEN) {
            if (pattern.test(line)) offences.push(`${relative(SRC, path)}:${i + 1} ${what}: ${line.trim()}`);
          }
        });
    }
    expect(offences).toEqual([]);
  });

  it('the check catches a file that queries the outbox directly', () => {
    const line = "return db.table(OUTBOX_TABLE).where('status').equals('pending').count();";
    expect(FORBIDDEN.filter(([, pattern]) => pattern.test(line)).map(([what]) => what)).toEqual([
      'names the outbox store',
      'queries ops by their stored status',
    ]);
    expect(FORBIDDEN.some(([, pattern]) => pattern.test("if (op.sent === 0 && op.status === 'pending')"))).toBe(true);
  });
});
