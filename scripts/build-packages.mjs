#!/usr/bin/env node
// Builds every publishable workspace package into its dist/, dependencies
// first (scripts/workspace-packages.mjs says which and in what order).
import { execFileSync } from 'node:child_process';
import { repoDir, workspacePackages } from './workspace-packages.mjs';

for (const pkg of workspacePackages()) {
  if (!pkg.manifest.scripts?.build) continue;
  process.stderr.write(`==> building ${pkg.name}\n`);
  execFileSync('npm', ['run', 'build', '--silent', '--workspace', pkg.dir], { cwd: repoDir, stdio: 'inherit' });
}
