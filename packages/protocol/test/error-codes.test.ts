/**
 * One error vocabulary: `SYNC_ERROR_CODES` (the closed `SyncErrorCode` union) holds exactly the
 * codes of docs/ERRORS.md's tables, and `REJECTION_CODES` exactly its per-op rejections. The
 * Rust side checks the gateway's enum against the same file (`tests/error_vocabulary.rs`).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REJECTION_CODES, SYNC_ERROR_CODES, isSyncErrorCode } from '../src/wire.js';

/** The codes of the `code` column of every table, or of the tables under `## heading`. */
function documented(heading?: string): Set<string> {
  const path = fileURLToPath(new URL('../../../docs/ERRORS.md', import.meta.url));
  const codes = new Set<string>();
  let inSection = heading === undefined;
  let column: number | null = null;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.startsWith('## ')) {
      inSection = heading === undefined || line.slice(3) === heading;
      column = null;
      continue;
    }
    if (!inSection || !line.startsWith('|')) {
      column = null;
      continue;
    }
    const cells = line.replace(/^\||\|$/g, '').split('|').map((cell) => cell.trim());
    if (column === null) {
      column = cells.findIndex((cell) => cell.startsWith('code'));
      continue;
    }
    for (const match of (cells[column] ?? '').matchAll(/`([^`]+)`/g)) codes.add(match[1]!);
  }
  expect(codes.size).toBeGreaterThan(0);
  return codes;
}

const sorted = (codes: Iterable<string>) => [...new Set(codes)].sort();

describe('the error vocabulary', () => {
  it('SyncErrorCode lists exactly the codes of docs/ERRORS.md', () => {
    expect(sorted(SYNC_ERROR_CODES)).toEqual(sorted(documented()));
  });

  it('RejectionCode lists exactly the per-op rejections of docs/ERRORS.md', () => {
    expect(sorted(REJECTION_CODES)).toEqual(sorted(documented('Per-op rejections')));
  });

  it('a code outside the list is not taken for one', () => {
    expect(isSyncErrorCode('store_unavailable')).toBe(true);
    expect(isSyncErrorCode('unavailable')).toBe(false);
    expect(isSyncErrorCode(404)).toBe(false);
  });
});
