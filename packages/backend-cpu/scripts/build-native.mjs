#!/usr/bin/env node
/**
 * Builds the native engine: the C kernels of ../c (with ../native/matmul.c in place of
 * ../c/matmul.c, and any other ../native/*.c beside them) and the node-addon-api glue ../native/addon.cc, which binds every entry point of
 * c/entry-points.generated.h (written first, by ./entry-points.mjs), once per instruction set, into
 * prebuilds/<platform>-<arch>/diff_transformer_cpu_<isa>.node, the files the loader looks for (and the
 * ones the published tarball carries, so that users never compile):
 *
 *   x64     avx512 (-march=x86-64-v4), avx2 (-march=x86-64-v3: AVX2, FMA), baseline (-march=x86-64)
 *   arm64   baseline (NEON and its fused multiply-add are part of the architecture)
 *
 * The compilers are the system's cc and c++ (GCC on Debian; $CC and $CXX to use others; scripts/setup.sh
 * installs g++); Node's headers come from the local Node installation (never downloaded), the
 * node-addon-api headers from the package's devDependency. libstdc++ and libgcc are linked statically,
 * so a prebuilt binary runs on any glibc Linux of its architecture.
 *
 *   node scripts/build-native.mjs           builds what is older than its sources
 *   node scripts/build-native.mjs --force   rebuilds everything
 *
 * Where there is no compiler (or no headers) it says why and exits 0: the backend then runs the
 * WebAssembly engine and says why the native one is missing. DIFFTX_CPU_JOBS: parallel compilations
 * (default 2). DIFFTX_NATIVE_REQUIRED=1 turns a skip into a failure (CI).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeEntryPointsHeader } from './entry-points.mjs';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const kernelDir = join(packageRoot, 'c');
const nativeDir = join(packageRoot, 'native');
const buildDir = join(nativeDir, 'build');
const prebuiltDir = join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`);
const force = process.argv.includes('--force');
const required = process.env.DIFFTX_NATIVE_REQUIRED === '1';

/** The instruction sets built for each architecture, best first. */
export const ISAS = {
  x64: {
    avx512: ['-march=x86-64-v4', '-mtune=generic'],
    avx2: ['-march=x86-64-v3', '-mtune=generic'],
    baseline: ['-march=x86-64'],
  },
  arm64: { baseline: ['-march=armv8-a'] },
};

const C_FLAGS = ['-std=gnu11', '-O3', '-fPIC', '-fvisibility=hidden', '-Wall', '-Wextra', '-Werror'];
// The kernels' own arithmetic, operation by operation: fused only where they ask for it (madd).
const FP_FLAGS = ['-ffp-contract=off', '-fno-math-errno'];
const CXX_FLAGS = [
  '-std=c++17',
  '-O2',
  '-fPIC',
  '-fvisibility=hidden',
  '-Wall',
  '-DNAPI_VERSION=8',
  '-DNAPI_CPP_EXCEPTIONS',
  '-DNODE_ADDON_API_DISABLE_DEPRECATED',
];
const LINK_FLAGS = ['-shared', '-static-libstdc++', '-static-libgcc', '-pthread', '-Wl,--as-needed', '-lm'];

function log(message) {
  process.stderr.write(`backend-cpu: ${message}\n`);
}

function skip(reason) {
  log(`${reason}; skipping the native engine's build. The backend will run its WebAssembly engine.`);
  log('To build it: install g++ and run `pnpm --filter @diff-transformer/backend-cpu build:native`.');
  process.exit(required ? 1 : 0);
}

/**
 * The kernel sources: every ../c/*.c, except where ../native has a file of the same name, which
 * replaces it (native/matmul.c), and every other ../native/*.c (kernels only the native engine has).
 */
function kernelSources() {
  const cFiles = (dir) => readdirSync(dir).filter((f) => f.endsWith('.c'));
  const native = cFiles(nativeDir);
  const shared = cFiles(kernelDir).filter((f) => !native.includes(f));
  return [...shared.sort().map((f) => join(kernelDir, f)), ...native.sort().map((f) => join(nativeDir, f))];
}

function newestInput() {
  let newest = statSync(fileURLToPath(import.meta.url)).mtimeMs;
  for (const dir of [kernelDir, nativeDir, join(nativeDir, 'compat')]) {
    for (const name of readdirSync(dir)) {
      if (/\.(c|cc|h)$/.test(name)) newest = Math.max(newest, statSync(join(dir, name)).mtimeMs);
    }
  }
  return newest;
}

function nodeHeaders() {
  const candidates = [
    process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
    resolve(dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ];
  return candidates.find((dir) => dir && existsSync(join(dir, 'node_api.h'))) ?? null;
}

function works(command) {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Runs `jobs` at a time; rejects with the first failure's command. */
async function runAll(commands, jobs) {
  const queue = [...commands];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const [command, ...args] = next;
      await new Promise((done, fail) => {
        const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
        child.on('error', fail);
        child.on('exit', (code) =>
          code === 0 ? done(undefined) : fail(new Error(`${command} ${args.join(' ')} exited ${code}`)),
        );
      });
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
}

const isas = ISAS[process.arch];
if (process.platform !== 'linux') skip(`${process.platform} is not supported by the native build (Linux only)`);
if (!isas) skip(`${process.arch} is not supported by the native build (x64 and arm64 only)`);
// The entry points' header first: the up-to-date check sees it (it is rewritten only when it changes).
await writeEntryPointsHeader();
const outputs = Object.keys(isas).map((isa) => join(prebuiltDir, `diff_transformer_cpu_${isa}.node`));
const newest = newestInput();
if (!force && outputs.every((file) => existsSync(file) && statSync(file).mtimeMs >= newest)) {
  log(`${prebuiltDir} is up to date`);
  process.exit(0);
}
const cc = process.env.CC ?? 'cc';
const cxx = process.env.CXX ?? 'c++';
if (!works(cc)) skip(`no C compiler (${cc})`);
if (!works(cxx)) skip(`no C++ compiler (${cxx})`);
const headers = nodeHeaders();
if (!headers)
  skip(`Node's headers (include/node/node_api.h) not found beside ${process.execPath}; set npm_config_nodedir`);
let addonApi;
try {
  addonApi = dirname(createRequire(import.meta.url).resolve('node-addon-api/package.json'));
} catch {
  skip('node-addon-api not found: run `pnpm install` first');
}

const started = Date.now();
const compile = [];
const link = [];
for (const [isa, flags] of Object.entries(isas)) {
  const objects = join(buildDir, isa);
  mkdirSync(objects, { recursive: true });
  const files = [];
  for (const source of kernelSources()) {
    const object = join(objects, `${source.split('/').pop()}.o`);
    files.push(object);
    compile.push([
      cc,
      ...C_FLAGS,
      ...FP_FLAGS,
      ...flags,
      `-I${join(nativeDir, 'compat')}`,
      `-I${kernelDir}`,
      '-c',
      source,
      '-o',
      object,
    ]);
  }
  const addon = join(objects, 'addon.o');
  files.push(addon);
  compile.push([
    cxx,
    ...CXX_FLAGS,
    ...flags,
    `-DDIFFTX_ISA="${isa}"`,
    `-I${headers}`,
    `-I${addonApi}`,
    `-I${kernelDir}`,
    '-c',
    join(nativeDir, 'addon.cc'),
    '-o',
    addon,
  ]);
  link.push([cxx, ...files, ...LINK_FLAGS, '-o', join(objects, `diff_transformer_cpu_${isa}.node`)]);
}
const jobs = Number(process.env.DIFFTX_CPU_JOBS ?? 2);
try {
  log(`building the native engine (${Object.keys(isas).join(', ')}) with ${cc} and ${cxx}, ${jobs} at a time`);
  await runAll(compile, jobs);
  await runAll(link, jobs);
} catch (error) {
  log(`the native build failed: ${error.message}`);
  process.exit(1);
}
mkdirSync(prebuiltDir, { recursive: true });
for (const isa of Object.keys(isas)) {
  // A rename, not a copy over the old file: a process that has the old one loaded keeps its mapping.
  renameSync(
    join(buildDir, isa, `diff_transformer_cpu_${isa}.node`),
    join(prebuiltDir, `diff_transformer_cpu_${isa}.node`),
  );
}
log(`built ${outputs.join(', ')} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
