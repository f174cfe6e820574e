/**
 * The published package, as a user gets it: the tarball carries the prebuilt binary, and installing it
 * (with core) into an empty folder, offline, runs no compiler and gives an import that registers 'cuda'
 * and reports it unavailable with CUDA's own reason (this machine has no GPU), never a crash.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const packageRoot = resolve(fileURLToPath(new URL('..', import.meta.url)));
const coreRoot = resolve(packageRoot, '..', 'core');
const prebuilt = `prebuilds/${process.platform}-${process.arch}/diff_transformer_cuda.node`;
const built = existsSync(join(packageRoot, prebuilt));
const hasPnpm = spawnSync('pnpm', ['--version'], { encoding: 'utf8' }).status === 0;
const scratch = mkdtempSync(join(tmpdir(), 'dtx-cuda-pack-'));

function run(command: string, args: string[], cwd: string) {
  const r = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Packs a package directory into the scratch folder; pnpm rewrites workspace: ranges as publishing does. */
function pack(dir: string, tool: 'pnpm' | 'npm'): string {
  const before = new Set(readdirSync(scratch));
  run(tool, ['pack', '--pack-destination', scratch], dir);
  const made = readdirSync(scratch).filter((f) => f.endsWith('.tgz') && !before.has(f));
  if (made.length !== 1) throw new Error(`expected one new tarball from ${dir}, found ${made.join(', ') || 'none'}`);
  return join(scratch, made[0]);
}

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the published tarball', () => {
  it.runIf(built)(
    'npm pack lists the prebuilt binary, the native sources and the build script, not the GPU scripts',
    () => {
      const [listing] = JSON.parse(
        run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], packageRoot),
      ) as Array<{ files: Array<{ path: string }> }>;
      const files = listing.files.map((f) => f.path);
      expect(files).toContain(prebuilt);
      expect(files).toContain('dist/index.js');
      expect(files).toContain('dist/index.cjs');
      expect(files).toContain('native/binding.gyp');
      expect(files).toContain('native/flash.cuh');
      expect(files).toContain('native/flash_bf16.cu');
      expect(files).toContain('scripts/build-native.mjs');
      expect(files.some((f) => f.startsWith('native/build/'))).toBe(false);
      expect(files.some((f) => f.includes('gpu-'))).toBe(false);
    },
  );

  it.runIf(built && hasPnpm)(
    'installs offline into an empty folder without compiling, and the import reports "unavailable" with the reason',
    () => {
      const core = pack(coreRoot, 'pnpm');
      const cuda = pack(packageRoot, 'pnpm');
      // Every third-party dependency is packed from the workspace's node_modules as well, so the offline
      // install needs nothing from npm's cache: a new machine's cache is empty (ENOTCACHED otherwise).
      // (pnpm links each package's dependencies into its own node_modules.)
      const dependency = (name: string, from: string) => pack(realpathSync(join(from, 'node_modules', name)), 'npm');
      const addonApi = dependency('node-addon-api', packageRoot);
      const coreDependencies = Object.keys(
        JSON.parse(readFileSync(join(coreRoot, 'package.json'), 'utf8')).dependencies ?? {},
      ).map((name) => dependency(name, coreRoot));
      const app = join(scratch, 'app');
      run('mkdir', ['-p', app], scratch);
      writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
      const started = Date.now();
      run('npm', ['install', '--offline', '--no-audit', '--no-fund', core, ...coreDependencies, addonApi, cuda], app);
      const installed = join(app, 'node_modules', '@diff-transformer', 'backend-cuda');
      expect(existsSync(join(installed, prebuilt))).toBe(true);
      expect(existsSync(join(installed, 'native', 'build'))).toBe(false); // nothing was compiled
      expect(Date.now() - started).toBeLessThan(60_000);

      const esm = run(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          "import { listBackends } from '@diff-transformer/core'; import '@diff-transformer/backend-cuda'; " +
            'console.log(JSON.stringify(await listBackends()));',
        ],
        app,
      );
      const cjs = run(
        process.execPath,
        [
          '-e',
          "const c = require('@diff-transformer/core'); require('@diff-transformer/backend-cuda'); " +
            'c.listBackends().then((b) => console.log(JSON.stringify(b)));',
        ],
        app,
      );
      for (const output of [esm, cjs]) {
        const cuda = (JSON.parse(output) as Array<{ name: string; available: boolean; reason?: string }>).find(
          (b) => b.name === 'cuda',
        );
        expect(cuda?.available).toBe(false);
        // The prebuilt binary loaded (the reason is CUDA's, not a missing file).
        expect(cuda?.reason).toMatch(/CUDA driver|CUDA device|cudaError/);
        console.log(`installed tarball: cuda unavailable: ${cuda?.reason}`);
      }
    },
    180_000,
  );
});
