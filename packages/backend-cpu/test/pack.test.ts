/**
 * The published package, as a user gets it: the tarball carries the prebuilt native addons, and
 * installing it (with core) into an empty folder, offline, runs no compiler and gives an import whose
 * 'auto' engine is the native one, in an ES module and in CommonJS.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const packageRoot = resolve(fileURLToPath(new URL('..', import.meta.url)));
const coreRoot = resolve(packageRoot, '..', 'core');
const platform = `${process.platform}-${process.arch}`;
const prebuilt = (isa: string) => `prebuilds/${platform}/diff_transformer_cpu_${isa}.node`;
// The native build covers Linux x64 and arm64; elsewhere the package has no addon to check.
const native = platform === 'linux-x64' || platform === 'linux-arm64';
const hasPnpm = spawnSync('pnpm', ['--version'], { encoding: 'utf8' }).status === 0;
const scratch = mkdtempSync(join(tmpdir(), 'dtx-cpu-pack-'));

function run(command: string, args: string[], cwd: string) {
  const r = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, npm_config_update_notifier: 'false', DIFFTX_CPU_ADDON_DIR: '', DIFFTX_CPU_ISA: '' },
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

describe.runIf(native)('the published tarball', () => {
  it('npm pack lists the prebuilt addons and the built code, not the native sources or their objects', () => {
    const [listing] = JSON.parse(
      run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], packageRoot),
    ) as Array<{
      files: Array<{ path: string }>;
    }>;
    const files = listing.files.map((f) => f.path);
    const isas = platform === 'linux-x64' ? ['avx512', 'avx2', 'baseline'] : ['baseline'];
    for (const isa of isas) expect(files, `run \`pnpm build\` first: ${prebuilt(isa)}`).toContain(prebuilt(isa));
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.cjs');
    expect(files.some((f) => f.startsWith('native/'))).toBe(false);
  });

  it.runIf(hasPnpm)(
    'installs offline into an empty folder without compiling, and auto runs the native engine',
    () => {
      const core = pack(coreRoot, 'pnpm');
      const cpu = pack(packageRoot, 'pnpm');
      // core's third-party dependencies are packed from the workspace's node_modules too, so the offline
      // install needs nothing from npm's cache (a new machine's cache is empty).
      const coreDependencies = Object.keys(
        JSON.parse(readFileSync(join(coreRoot, 'package.json'), 'utf8')).dependencies ?? {},
      ).map((name) => pack(realpathSync(join(coreRoot, 'node_modules', name)), 'npm'));
      const app = join(scratch, 'app');
      run('mkdir', ['-p', app], scratch);
      writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
      run(
        'npm',
        ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', core, ...coreDependencies, cpu],
        app,
      );
      const installed = join(app, 'node_modules', '@diff-transformer', 'backend-cpu');
      expect(existsSync(join(installed, prebuilt('baseline')))).toBe(true);
      expect(existsSync(join(installed, 'native'))).toBe(false); // nothing to compile, nothing compiled

      const script = [
        'const b = await createCpuBackend({ threads: 2 });',
        'const t = tensor([1, 2, 3, 4], [2, 2], { backend: b });',
        'const product = Array.from(await ops.matmul(t, t).data());',
        'console.log(JSON.stringify({ engine: b.engine, reason: b.engineReason, product }));',
        'b.dispose();',
      ].join(' ');
      const imports = {
        esm:
          "import { ops, tensor } from '@diff-transformer/core'; " +
          "import { createCpuBackend } from '@diff-transformer/backend-cpu';",
        cjs:
          "const { ops, tensor } = require('@diff-transformer/core'); " +
          "const { createCpuBackend } = require('@diff-transformer/backend-cpu');",
      };
      const esm = run(process.execPath, ['--input-type=module', '-e', `${imports.esm} ${script}`], app);
      const cjs = run(process.execPath, ['-e', `${imports.cjs} (async () => { ${script} })();`], app);
      for (const output of [esm, cjs]) {
        const result = JSON.parse(output) as { engine: string; reason: string; product: number[] };
        expect(result.engine).toBe('native');
        expect(result.reason).toContain(join('node_modules', '@diff-transformer', 'backend-cpu', 'prebuilds'));
        expect(result.product).toEqual([7, 10, 15, 22]);
      }
    },
    180_000,
  );
});
