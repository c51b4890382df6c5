/**
 * The packages as a real app gets them: every publishable workspace package
 * is built and packed (`npm pack`), the tarballs are installed into a fresh
 * Vite app in a temporary directory outside the workspace, the app is built,
 * and two devices in Chromium sync through the real or3-sync binary.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../../demo/test/support/browser.js';
import { addNoteAndSee, openNotesDevices } from '../../demo/test/support/notes-app.js';
import { startServer, type DemoServer } from '../../demo/test/support/server.js';

const repoDir = fileURLToPath(new URL('../../..', import.meta.url));
const appSource = fileURLToPath(new URL('../app', import.meta.url));

interface WorkspacePackage {
  name: string;
  dir: string;
}

/** What `npm pack --json` says of one tarball. */
interface PackResult {
  name: string;
  filename: string;
  files: { path: string }[];
}

interface Manifest {
  exports?: Record<string, string | Record<string, string>>;
  devDependencies?: Record<string, string>;
}

const run = (command: string, args: string[], cwd: string) =>
  execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const manifestOf = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;

const workDir = mkdtempSync(join(tmpdir(), 'or3-packed-install-'));
const appDir = join(workDir, 'app');
const packed: PackResult[] = [];
let server: DemoServer;
let browser: Browser;

before(async () => {
  run('node', [join(repoDir, 'scripts/build-packages.mjs')], repoDir);
  const packages = JSON.parse(run('node', [join(repoDir, 'scripts/workspace-packages.mjs')], repoDir)) as WorkspacePackage[];
  const tarballs = join(workDir, 'tarballs');
  mkdirSync(tarballs);
  for (const pkg of packages) {
    packed.push(...(JSON.parse(run('npm', ['pack', '--json', '--silent', '--pack-destination', tarballs], pkg.dir)) as PackResult[]));
  }

  cpSync(appSource, appDir, { recursive: true });
  writeFileSync(join(appDir, 'package.json'), JSON.stringify({ name: 'packed-install-app', private: true, type: 'module' }));
  // The app's own dependencies, at the versions the workspace tests with (so the npm cache has them).
  const vueDevDeps = manifestOf(join(repoDir, 'packages/vue')).devDependencies ?? {};
  const demoDevDeps = manifestOf(join(repoDir, 'packages/demo')).devDependencies ?? {};
  run(
    'npm',
    [
      'install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error',
      // Peers the app does not use (nuxt, convex) stay out; the ones it does are listed.
      '--legacy-peer-deps',
      ...packed.map((p) => join(tarballs, p.filename)),
      `vue@${vueDevDeps.vue}`, `dexie@${vueDevDeps.dexie}`, `vite@${demoDevDeps.vite}`,
    ],
    appDir,
  );
  run('npx', ['vite', 'build', '--logLevel', 'warn'], appDir);
  server = await startServer(join(appDir, 'dist'));
  browser = await launchChromium();
}, { timeout: 600_000 });

after(async () => {
  await browser?.close();
  await server?.stop();
  rmSync(workDir, { recursive: true, force: true });
});

test('every packed package ships its exports from dist/, never ./src', () => {
  const names = packed.map((p) => p.name);
  // The runtime chain an app installs: the vue bindings on the client on the protocol rules.
  for (const name of ['@or3/sync-protocol', '@or3/sync-client', '@or3/sync-vue']) {
    assert.ok(names.includes(name), `packed ${names.join(', ')}: ${name} is missing`);
  }
  for (const tarball of packed) {
    const installed = join(appDir, 'node_modules', tarball.name);
    assert.ok(!lstatSync(installed).isSymbolicLink(), `${tarball.name} is installed from its tarball, not linked`);
    const exportsMap = manifestOf(installed).exports ?? {};
    const files = new Set(tarball.files.map((f) => f.path));
    for (const [subpath, target] of Object.entries(exportsMap)) {
      assert.ok(!subpath.startsWith('./src'), `${tarball.name} exports ${subpath}`);
      const targets = typeof target === 'string' ? [target] : Object.values(target);
      for (const file of targets.filter((t) => !t.includes('*'))) {
        assert.ok(files.has(file.replace(/^\.\//, '')), `${tarball.name}: ${subpath} points at ${file}, which is not in the tarball`);
        assert.ok(!file.startsWith('./src/'), `${tarball.name}: ${subpath} points into src`);
      }
    }
  }
});

test('the OR3 Chat provider installs from its tarball and its entries load outside the workspace', () => {
  // Node resolves the package as an OR3 app's server would: its own dependencies (jose, h3, @nuxt/kit) from the install.
  const script = `
    const server = await import('or3-provider-or3sync');
    const nuxtModule = (await import('or3-provider-or3sync/nuxt')).default;
    const client = await import('or3-provider-or3sync/client');
    console.log(JSON.stringify({
      id: server.OR3SYNC_PROVIDER_ID,
      adapter: typeof server.createOr3SyncAdapter,
      hlc: server.toOr3Hlc(server.toGatewayHlc('0mxcn7igo:001:abcdef01')),
      module: (await nuxtModule.getMeta()).name,
      provider: client.createOr3SyncRealtimeProvider().mode,
    }));`;
  const loaded = JSON.parse(run('node', ['--input-type=module', '-e', script], appDir)) as Record<string, string>;
  assert.deepEqual(loaded, { id: 'or3sync', adapter: 'function', hlc: '0mxcn7igo:001:abcdef01', module: 'or3-provider-or3sync', provider: 'gateway' });
  const installed = join(appDir, 'node_modules', 'or3-provider-or3sync', 'dist', 'runtime');
  for (const file of ['server/plugins/register.js', 'server/api/realtime-token.js', 'client/register-provider.js']) {
    assert.ok(lstatSync(join(installed, file)).isFile(), `the module's runtime file ${file} is in the tarball`);
  }
});

test('two devices of the installed app sync through the gateway', { timeout: 120_000 }, async () => {
  const workspaceId = await server.createWorkspace('packed notes', 'pat');
  const [first, second] = (await openNotesDevices(browser, server.baseUrl, 'pat', workspaceId)) as [Page, Page];
  await addNoteAndSee(first, second, 'from the packed app');
  await addNoteAndSee(second, first, 'and back');
});
