#!/usr/bin/env node
/**
 * Builds the CUDA addon and copies it to prebuilds/<platform>-<arch>/diff_transformer_cuda.node, the file
 * the loader looks for first (and the one the published tarball carries).
 *
 *   node scripts/build-native.mjs           build when a source is newer than the prebuilt binary, and
 *                                           this machine has an NVIDIA driver (see DIFFTX_BUILD_CUDA)
 *   node scripts/build-native.mjs --force   always rebuild
 *
 * Never fails for a missing toolchain: without nvcc (or Node's headers, or node-gyp) it prints why it
 * skipped and exits 0, and the backend then reports itself unavailable with the file it did not find.
 * It never downloads anything: Node's headers come from the local Node installation (`--nodedir`).
 * Environment: CUDA_HOME (default: the directory above nvcc's bin/), NVCC, DIFFTX_CUDA_GENCODE (nvcc
 * -gencode flags, default sm_80, sm_86, sm_89, sm_90a and compute_80 PTX), DIFFTX_CUDA_JOBS, and
 * DIFFTX_BUILD_CUDA: `auto` (the default) builds only where an NVIDIA driver is installed, since the
 * addon runs nowhere else and its build is most of a fresh machine's build time; `1` builds wherever nvcc
 * is (CI, which tests the addon's loader and packaging; a bundle for a GPU machine); `0` never builds.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(packageRoot, 'native');
const ADDON = 'diff_transformer_cuda.node';
const prebuiltDir = join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`);
const prebuilt = join(prebuiltDir, ADDON);
const force = process.argv.includes('--force');

function log(message) {
  process.stderr.write(`backend-cuda: ${message}\n`);
}

/** @returns {never} */
function skip(reason) {
  log(`${reason}; skipping the native build. The CUDA backend will report itself unavailable.`);
  log(
    'To build it: install the CUDA toolkit (nvcc) and run `pnpm --filter @diff-transformer/backend-cuda build:native`.',
  );
  process.exit(0);
}

function findOnPath(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  return null;
}

function findNvcc() {
  const candidates = [
    process.env.NVCC,
    process.env.CUDA_HOME && join(process.env.CUDA_HOME, 'bin', 'nvcc'),
    process.env.CUDA_PATH && join(process.env.CUDA_PATH, 'bin', 'nvcc'),
    findOnPath('nvcc'),
    '/usr/local/cuda/bin/nvcc',
  ];
  return candidates.find((c) => c && existsSync(c)) ?? null;
}

/** The CUDA installation: the directory whose bin/ holds the real nvcc (following wrapper scripts and links). */
function findCudaHome(nvcc) {
  if (process.env.CUDA_HOME) return process.env.CUDA_HOME;
  const real = realpathSync(nvcc);
  const home = dirname(dirname(real));
  if (existsSync(join(home, 'lib64', 'libcudart_static.a'))) return home;
  if (existsSync('/usr/local/cuda/lib64/libcudart_static.a')) return '/usr/local/cuda';
  return home;
}

/** A local Node installation whose include/node has node_api.h (so node-gyp never downloads headers). */
function findNodeDir() {
  const candidates = [process.env.npm_config_nodedir, resolve(dirname(process.execPath), '..'), '/usr', '/usr/local'];
  return (
    candidates.find(
      (dir) =>
        dir &&
        existsSync(join(dir, 'include', 'node', 'node_api.h')) &&
        existsSync(join(dir, 'include', 'node', 'common.gypi')),
    ) ?? null
  );
}

function findNodeGyp() {
  const require = createRequire(import.meta.url);
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    // not installed beside the package: npm ships one
  }
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp))
    return process.env.npm_config_node_gyp;
  const npm = findOnPath('npm');
  if (npm) {
    const bundled = join(dirname(realpathSync(npm)), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (existsSync(bundled)) return bundled;
  }
  return null;
}

function newestSource() {
  let newest = 0;
  for (const name of readdirSync(nativeDir)) {
    if (/\.(cu|cuh|cc|h|gyp)$/.test(name)) newest = Math.max(newest, statSync(join(nativeDir, name)).mtimeMs);
  }
  return newest;
}

if (!force && existsSync(prebuilt) && statSync(prebuilt).mtimeMs >= newestSource()) {
  log(`${prebuilt} is up to date`);
  process.exit(0);
}

/** Where this machine shows an NVIDIA driver (its kernel module, device node or libcuda), or null. */
function nvidiaDriver() {
  for (const file of ['/proc/driver/nvidia/version', '/dev/nvidiactl']) if (existsSync(file)) return file;
  const ldconfig = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' });
  return ldconfig.status === 0 && /\blibcuda\.so\.1\b/.test(ldconfig.stdout) ? 'libcuda.so.1' : null;
}

const mode = (process.env.DIFFTX_BUILD_CUDA ?? 'auto').toLowerCase();
if (!['auto', '1', 'always', '0', 'never'].includes(mode)) {
  log(`DIFFTX_BUILD_CUDA=${process.env.DIFFTX_BUILD_CUDA}: expected auto, 1 (always) or 0 (never)`);
  process.exit(1);
}
if (!force && (mode === '0' || mode === 'never')) skip('DIFFTX_BUILD_CUDA=0');
if (!force && mode === 'auto' && !nvidiaDriver())
  skip(
    'no NVIDIA driver on this machine (no /proc/driver/nvidia, /dev/nvidiactl or libcuda.so.1), so the addon ' +
      'could not run here; DIFFTX_BUILD_CUDA=1 builds it anyway (CI, or a bundle for a GPU machine)',
  );
if (process.platform !== 'linux') skip(`${process.platform} is not supported by the native build (Linux only)`);
const nvcc = findNvcc();
if (!nvcc) skip('nvcc not found (looked at $NVCC, $CUDA_HOME/bin, $PATH and /usr/local/cuda/bin)');
const cudaHome = findCudaHome(nvcc);
if (!existsSync(join(cudaHome, 'lib64', 'libcudart_static.a')))
  skip(`${join(cudaHome, 'lib64', 'libcudart_static.a')} not found`);
const nodeDir = findNodeDir();
if (!nodeDir)
  skip(`Node's headers (include/node/node_api.h) not found beside ${process.execPath}; set npm_config_nodedir`);
const nodeGyp = findNodeGyp();
if (!nodeGyp) skip('node-gyp not found (install it, or use npm, which ships one)');
/** @type {string} */
let addonApi;
try {
  addonApi = createRequire(import.meta.url).resolve('node-addon-api');
} catch {
  skip('node-addon-api not found: run `npm install` in the package first');
}

const jobs = process.env.DIFFTX_CUDA_JOBS ?? String(Math.max(1, cpus().length));
const args = [
  nodeGyp,
  'rebuild',
  '--loglevel=warn',
  `--directory=${nativeDir}`,
  `--nodedir=${nodeDir}`,
  `--jobs=${jobs}`,
  '--',
  `-Dcuda_home=${cudaHome}`,
  `-Dnvcc=${nvcc}`,
];
if (process.env.DIFFTX_CUDA_GENCODE) args.push(`-Dcuda_gencode=${process.env.DIFFTX_CUDA_GENCODE}`);
log(
  `building with ${nvcc} (CUDA in ${cudaHome}), Node headers from ${nodeDir}, ` +
    `node-addon-api ${dirname(addonApi)}; this takes about a minute`,
);
const started = Date.now();
const run = spawnSync(process.execPath, args, {
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, npm_config_loglevel: 'warn' },
});
if (run.status !== 0) {
  log(`node-gyp failed (exit ${run.status ?? run.signal}); see the compiler output above`);
  process.exit(1);
}
const built = join(nativeDir, 'build', 'Release', ADDON);
mkdirSync(prebuiltDir, { recursive: true });
copyFileSync(built, prebuilt);
log(
  `built ${prebuilt} (${(statSync(prebuilt).size / 1e6).toFixed(1)} MB) ` +
    `in ${((Date.now() - started) / 1000).toFixed(0)} s`,
);
