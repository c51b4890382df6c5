#!/usr/bin/env node
// Builds every publishable workspace package into its dist/, dependencies
// first (scripts/workspace-packages.mjs says which and in what order). A
// package whose sources are older than its last build is skipped, so the
// tests that need built packages (Nuxt, packed install) pay for one build.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoDir, workspacePackages } from './workspace-packages.mjs';

const stampDir = join(repoDir, 'node_modules', '.cache', 'or3-build');

/** The newest modification time under `path` (0 when it does not exist). */
function newestMtime(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return readdirSync(path).reduce((newest, name) => Math.max(newest, newestMtime(join(path, name))), stat.mtimeMs);
}

mkdirSync(stampDir, { recursive: true });
for (const pkg of workspacePackages()) {
  if (!pkg.manifest.scripts?.build) continue;
  const stamp = join(stampDir, `${pkg.name.replace('/', '__')}.stamp`);
  const inputs = readdirSync(pkg.dir).filter((name) => !['dist', 'node_modules', 'test'].includes(name) && !name.startsWith('.'));
  const newestInput = Math.max(...inputs.map((name) => newestMtime(join(pkg.dir, name))));
  if (existsSync(join(pkg.dir, 'dist')) && newestMtime(stamp) > newestInput) continue;
  process.stderr.write(`==> building ${pkg.name}\n`);
  execFileSync('npm', ['run', 'build', '--silent', '--workspace', pkg.dir], { cwd: repoDir, stdio: 'inherit' });
  writeFileSync(stamp, new Date().toISOString());
}
