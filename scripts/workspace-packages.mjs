// The npm workspace's publishable packages (not `private`), in dependency
// order: a package comes after every workspace package it depends on. The
// build and the packed-install test use it, so a package added under
// packages/ is built and packed without being named anywhere.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoDir = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** `{ name, dir, manifest }` of each publishable package, dependencies first. */
export function workspacePackages() {
  const root = JSON.parse(readFileSync(join(repoDir, 'package.json'), 'utf8'));
  const dirs = root.workspaces.flatMap((pattern) => {
    if (!pattern.endsWith('/*')) return [join(repoDir, pattern)];
    const parent = join(repoDir, pattern.slice(0, -2));
    return readdirSync(parent).map((name) => join(parent, name));
  });
  const packages = dirs
    .filter((dir) => existsSync(join(dir, 'package.json')))
    .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
    .filter(({ manifest }) => !manifest.private)
    .map(({ dir, manifest }) => ({ name: manifest.name, dir, manifest }));
  const byName = new Map(packages.map((p) => [p.name, p]));
  const ordered = [];
  const visiting = new Set();
  const visit = (pkg) => {
    if (ordered.includes(pkg)) return;
    if (visiting.has(pkg.name)) throw new Error(`workspace packages depend on each other in a cycle through ${pkg.name}`);
    visiting.add(pkg.name);
    const deps = { ...pkg.manifest.dependencies, ...pkg.manifest.peerDependencies };
    for (const name of Object.keys(deps)) if (byName.has(name)) visit(byName.get(name));
    visiting.delete(pkg.name);
    ordered.push(pkg);
  };
  packages.sort((a, b) => a.name.localeCompare(b.name)).forEach(visit);
  return ordered;
}

// Run directly, it prints the list as JSON (`[{ "name", "dir" }]`), for tests in any language.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(JSON.stringify(workspacePackages().map(({ name, dir }) => ({ name, dir }))));
}
