/**
 * The backend object itself, for each engine: its description, storage semantics (copies in and
 * out, zeros that stay zero when the heap reuses a block, live counting), the dtypes it refuses,
 * its options, its registration with core, and that its worker threads never keep Node alive.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  BackendDisposedError,
  BackendUnavailableError,
  DTypeError,
  DeviceError,
  disposeBackend,
  KERNEL_NAMES,
  initializedBackend,
  listBackends,
  memory,
  ops,
  registeredBackends,
  tensor,
  tidy,
  zeros,
} from '@diff-transformer/core';
import { createCpuBackend, type CpuBackend, type EngineName } from '@diff-transformer/backend-cpu';
import { describe, expect, it, vi } from 'vitest';

// Node 20 validates relaxed SIMD only behind a flag, so the engines every run has are these three (the
// native one is compiled by the package's build).
const engines: EngineName[] = ['native', 'wasm-simd128', 'typescript'];
const DEVICES: Record<string, RegExp> = {
  native: /^CPU \(native (AVX-512|AVX2|baseline|NEON), 1 thread, float32\)$/,
  'wasm-simd128': /^CPU \(WebAssembly SIMD128, 1 thread, float32\)$/,
  typescript: /^CPU \(TypeScript, 1 thread, float32\)$/,
};

describe.each(engines)('the backend object (%s)', (engine) => {
  // One thread: these tests are about storage, and a fresh backend per test must start fast.
  const create = () => createCpuBackend({ engine, threads: 1 });

  it('describes itself and implements every kernel of the contract', async () => {
    const backend = await create();
    expect(backend.name).toBe('cpu');
    expect(backend.engine).toBe(engine);
    expect(backend.threads).toBe(1);
    expect(backend.device).toMatch(DEVICES[engine]);
    expect([...backend.dtypes]).toEqual(['float32', 'int32']);
    for (const kernel of KERNEL_NAMES) expect(typeof backend.kernels[kernel], kernel).toBe('function');
  });

  it('upload copies: changing the host array afterwards does not change the tensor', async () => {
    const backend = await create();
    const host = new Float32Array([1, 2, 3]);
    const t = tensor(host, [3], { backend });
    host[0] = 99;
    expect(Array.from(await t.data())).toEqual([1, 2, 3]);
  });

  it('read returns a copy: writing into it does not change the tensor', async () => {
    const backend = await create();
    const t = tensor([1, 2, 3], [3], { backend });
    const first = await t.data();
    first[1] = -7;
    const second = await t.data();
    expect(second).not.toBe(first);
    expect(Array.from(second)).toEqual([1, 2, 3]);
  });

  it('keeps int32 as Int32Array and zero-fills, also in a reused block', async () => {
    const backend = await create();
    const ids = tensor(new Int32Array([5, -3, 2147483647]), [3], { backend });
    const data = await ids.data();
    expect(data).toBeInstanceOf(Int32Array);
    expect(Array.from(data)).toEqual([5, -3, 2147483647]);
    const z = zeros([2, 3], { backend, dtype: 'int32' });
    expect(Array.from(await z.data())).toEqual([0, 0, 0, 0, 0, 0]);
    const dirty = tensor(new Float32Array(64).fill(7), [64], { backend });
    dirty.dispose();
    expect(Array.from(await zeros([64], { backend }).data())).toEqual(new Array(64).fill(0));
  });

  it('refuses float16 and bfloat16 storage, through core and directly', async () => {
    const backend = await create();
    expect(() => tensor([1, 2], [2], { backend, dtype: 'float16' })).toThrow(DTypeError);
    expect(() => zeros([2], { backend, dtype: 'bfloat16' })).toThrow(DTypeError);
    // Tensor.to() uploads with the source's dtype without asking core first.
    expect(() => backend.upload(new Float32Array(2), 'float16')).toThrow(/float32 \| int32/);
    expect(() => backend.zeros(2, 'bfloat16')).toThrow(DTypeError);
  });

  it('counts live storages: uploads, zeros and kernel outputs, until freed', async () => {
    const backend = await create();
    expect(backend.liveStorages).toBe(0);
    const a = tensor([1, 2], [2], { backend });
    const b = zeros([2], { backend });
    expect(backend.liveStorages).toBe(2);
    // Views share their storage (nothing new); the kernel output is new and survives the scope.
    const sum = tidy(() => ops.add(ops.reshape(a, [1, 2]), ops.reshape(b, [1, 2])));
    expect(backend.liveStorages).toBe(3);
    sum.dispose();
    a.dispose();
    b.dispose();
    expect(backend.liveStorages).toBe(0);
    // A second free of the same handle is harmless.
    const c = tensor([1], [1], { backend });
    backend.free(c.storage);
    backend.free(c.storage);
    expect(backend.liveStorages).toBe(0);
  });

  it('synchronize resolves at once: every kernel has finished when it returns', async () => {
    await expect((await create()).synchronize!()).resolves.toBeUndefined();
  });

  it('runs out of memory with a typed DeviceError, and keeps working afterwards', async () => {
    const backend = await create();
    const before = memory('cpu');
    const live = backend.liveStorages;
    // 10^10 floats: beyond the WebAssembly heap's 4 GiB and beyond any typed array.
    for (const make of [
      () => zeros([100_000, 100_000], { backend }),
      () => ops.matmul(zeros([100_000, 1], { backend }), zeros([1, 100_000], { backend })),
    ]) {
      const error = (() => {
        try {
          tidy(make);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(DeviceError);
      expect(error).toMatchObject({ code: 'DEVICE_OUT_OF_MEMORY', backend: 'cpu' });
      expect((error as Error).message).toMatch(/^backend 'cpu': out of memory: /);
    }
    expect(memory('cpu')).toEqual(before);
    expect(backend.liveStorages).toBe(live);
    const a = tensor([1, 2, 3, 4], [2, 2], { backend });
    expect(Array.from(await ops.matmul(a, a).data())).toEqual([7, 10, 15, 22]);
    backend.dispose();
  });

  it('dispose can be called twice', async () => {
    const backend = await createCpuBackend({ engine, threads: 2 });
    backend.dispose();
    backend.dispose();
  });
});

describe('the WebAssembly heap', () => {
  it('gives freed blocks back: used bytes return to where they were, and the peak shows the high water', async () => {
    const backend = await createCpuBackend({ threads: 1 });
    const before = backend.heapStats()!;
    backend.resetHeapPeak();
    const big = tensor(new Float32Array(1 << 20), [1 << 20], { backend });
    expect(backend.heapStats()!.usedBytes).toBe(before.usedBytes + 4 * (1 << 20));
    big.dispose();
    const after = backend.heapStats()!;
    expect(after.usedBytes).toBe(before.usedBytes);
    expect(after.peakBytes).toBe(before.usedBytes + 4 * (1 << 20));
    expect(after.capacityBytes).toBeGreaterThanOrEqual(4 * (1 << 20));
  });

  it('works on an unshared memory, as in a page without cross-origin isolation, with one thread', async () => {
    const backend = await createCpuBackend({ sharedMemory: false, threads: 4 });
    expect(backend.threads).toBe(1);
    expect(backend.sharedMemory).toBe(false);
    const a = tensor([1, 2, 3, 4], [2, 2], { backend });
    expect(Array.from(await ops.matmul(a, a).data())).toEqual([7, 10, 15, 22]);
    // Growing an unshared memory detaches its old buffer; views must follow.
    const big = tensor(new Float32Array(1 << 23).fill(1), [1 << 23], { backend });
    expect(Array.from(await ops.matmul(a, a).data())).toEqual([7, 10, 15, 22]);
    big.dispose();
  });

  it('has no TypeScript-engine counterpart', async () => {
    const backend = await createCpuBackend({ engine: 'typescript' });
    expect(backend.heapStats()).toBeNull();
    expect(backend.sharedMemory).toBe(false);
  });
});

describe('options', () => {
  it('auto picks the native engine in Node (the build compiles it), with the hardware threads and why', async () => {
    const backend = await createCpuBackend();
    expect(backend.engine).toBe('native');
    expect(backend.threads).toBe(availableParallelism());
    expect(backend.engineReason).toMatch(/^native (avx512|avx2|baseline) \((CPUID|arm64)[^)]*\), .*\.node$/);
    expect(backend.device).toMatch(/^CPU \(native (AVX-512|AVX2|baseline|NEON), \d+ threads?, float32\)$/);
    backend.dispose();
  });

  it('auto takes WebAssembly SIMD where the native engine is not there, saying why', async () => {
    const backend = await createCpuBackend({ sharedMemory: false });
    expect(backend.engine).toMatch(/^wasm-/);
    expect(backend.engineReason).toMatch(/^no native engine: sharedMemory: false/);
    backend.dispose();
  });

  it(
    'auto takes the TypeScript engine, with a warning, where compiling WebAssembly is refused ' +
      '(a CSP without wasm-unsafe-eval)',
    async () => {
      const refusal = new WebAssembly.CompileError('WebAssembly.compile(): refused by the Content-Security-Policy');
      const compile = vi.spyOn(WebAssembly, 'compile').mockRejectedValue(refusal);
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      try {
        // sharedMemory: false stands for a page, where there is no native engine to take first.
        const backend = await createCpuBackend({ sharedMemory: false });
        expect(backend.engine).toBe('typescript');
        expect(backend.device).toBe('CPU (TypeScript, 1 thread, float32)');
        expect(warn).toHaveBeenCalledWith(
          expect.stringMatching(
            new RegExp(
              /^backend 'cpu': the WebAssembly engine could not start \(CompileError: .*refused.*\); /.source +
                /running the TypeScript engine$/.source,
            ),
          ),
        );
        // Named, the engine fails with the reason instead.
        await expect(createCpuBackend({ engine: 'wasm-simd128' })).rejects.toThrow(
          /refused by the Content-Security-Policy/,
        );
      } finally {
        compile.mockRestore();
        warn.mockRestore();
      }
    },
  );

  it('refuses a bad thread count and an unknown engine, saying why', async () => {
    await expect(createCpuBackend({ threads: 0 })).rejects.toThrow(/threads: expected an integer ≥ 1, got 0/);
    await expect(createCpuBackend({ engine: 'gpu' as EngineName })).rejects.toThrow(BackendUnavailableError);
  });

  it('refuses relaxed SIMD where the engine does not validate it, naming the Node flag', async () => {
    const relaxed: CpuBackend | Error = await createCpuBackend({ engine: 'wasm-relaxed-simd', threads: 1 }).catch(
      (error: Error) => error,
    );
    if (relaxed instanceof Error) expect(relaxed.message).toMatch(/--experimental-wasm-relaxed-simd/);
    else expect(relaxed.engine).toBe('wasm-relaxed-simd');
  });
});

describe('registration', () => {
  it('importing the package registers cpu at priority 100', async () => {
    expect(registeredBackends()).toContain('cpu');
    const info = (await listBackends()).find((b) => b.name === 'cpu');
    expect(info).toMatchObject({ name: 'cpu', priority: 100, available: true });
    expect(info?.device).toMatch(/^CPU \(native (AVX-512|AVX2|baseline|NEON), \d+ threads?, float32\)$/);
    const backend = await initializedBackend('cpu');
    expect(backend.name).toBe('cpu');
  });

  it('after disposeBackend, its tensors refuse use with BackendDisposedError, as on webgpu', async () => {
    const backend = await initializedBackend('cpu');
    const before = memory('cpu');
    const t = tensor([1, 2], [2], { backend });
    await disposeBackend('cpu');
    await expect(t.data()).rejects.toThrow(BackendDisposedError);
    expect(() => ops.add(t, t)).toThrow(/used after disposeBackend\('cpu'\) released its backend/);
    t.dispose();
    expect(memory('cpu')).toEqual(before);
    const fresh = await initializedBackend('cpu');
    expect(fresh).not.toBe(backend);
    const u = tensor([3], [1], { backend: fresh });
    expect(Array.from(await u.data())).toEqual([3]);
    u.dispose();
  });

  it('core counts cpu storages by name', async () => {
    const backend = await createCpuBackend({ threads: 1 });
    const before = memory('cpu');
    const t = tensor(new Float32Array(10), [10], { backend });
    expect(memory('cpu')).toEqual({ liveStorages: before.liveStorages + 1, bytes: before.bytes + 40 });
    t.dispose();
    expect(memory('cpu')).toEqual(before);
  });
});

describe('worker threads', () => {
  it('threadStats counts the parallel phases, their tasks and those the workers claimed', async () => {
    const backend = await createCpuBackend({ engine: 'wasm-simd128', threads: 2 });
    expect(backend.sharedMemory).toBe(true);
    expect(backend.threadStats()).toEqual({ parallelPhases: 0, tasks: 0, workerTasks: 0 });
    const a = tensor(new Float32Array(256 * 256).fill(1), [256, 256], { backend });
    ops.matmul(a, a).dispose();
    const first = backend.threadStats();
    expect(first.parallelPhases).toBeGreaterThan(0);
    expect(first.tasks).toBeGreaterThanOrEqual(first.parallelPhases);
    // A worker asleep in Atomics.wait may wake only after the calling thread has claimed every task of
    // one matmul (on a busy machine); the next matmuls find it spinning, so it claims some of theirs.
    for (let i = 0; i < 20 && backend.threadStats().workerTasks === 0; i++) ops.matmul(a, a).dispose();
    const stats = backend.threadStats();
    expect(stats.workerTasks).toBeGreaterThan(0);
    expect(stats.workerTasks).toBeLessThanOrEqual(stats.tasks);
    // Every phase counts its tasks once, whoever claims them.
    expect(stats.tasks % first.tasks).toBe(0);
    backend.dispose();
    const single = await createCpuBackend({ engine: 'wasm-simd128', threads: 1 });
    ops.matmul(
      tensor(new Float32Array(256 * 256).fill(1), [256, 256], { backend: single }),
      tensor(new Float32Array(256 * 256), [256, 256], { backend: single }),
    );
    expect(single.threadStats()).toEqual({ parallelPhases: 0, tasks: 0, workerTasks: 0 });
    single.dispose();
  });

  const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
  // The package's own build (turbo builds it before the tests run): workers start from it exactly as
  // users get it.
  it('never keep Node running: a script that uses the pool and forgets dispose() exits', () => {
    const script = `
      const { createCpuBackend } = await import(${JSON.stringify(dist)});
      const { tensor, ops } = await import('@diff-transformer/core');
      const backend = await createCpuBackend({ threads: 3 });
      const a = tensor(new Float32Array(256 * 256).fill(1), [256, 256], { backend });
      const c = await ops.matmul(a, a).data();
      console.log(backend.threads, c[0]);
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
      cwd: fileURLToPath(new URL('..', import.meta.url)),
    });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('3 256');
    expect(run.status).toBe(0);
  });

  it('start from a bundle whose syntax a bundler lowered (esbuild, target es2016, keepNames)', async () => {
    // The worker program is shipped as the source text of a function of this package, after any
    // transform: one that calls a helper (async/await becomes __async below ES2017) fails there.
    const { build } = await import('esbuild');
    const bundled = await build({
      entryPoints: [fileURLToPath(new URL('../src/index.ts', import.meta.url))],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'es2016',
      supported: { 'dynamic-import': true },
      keepNames: true,
      external: ['@diff-transformer/core'],
      write: false,
      logLevel: 'silent',
    });
    // Inside the package, so that the bundle resolves @diff-transformer/core as the package does.
    const cache = fileURLToPath(new URL('../node_modules/.cache/', import.meta.url));
    mkdirSync(cache, { recursive: true });
    const folder = mkdtempSync(join(cache, 'lowered-'));
    try {
      const file = join(folder, 'index.mjs');
      writeFileSync(file, bundled.outputFiles[0].text);
      expect(bundled.outputFiles[0].text).toMatch(/__async\(/);
      const script = `
        const { createCpuBackend } = await import(${JSON.stringify(file)});
        const { tensor, ops } = await import('@diff-transformer/core');
        const backend = await createCpuBackend({ engine: 'wasm-simd128', threads: 2 });
        const a = tensor(new Float32Array(256 * 256).fill(1), [256, 256], { backend });
        for (let i = 0; i < 20 && backend.threadStats().workerTasks === 0; i++) ops.matmul(a, a).dispose();
        const c = await ops.matmul(a, a).data();
        console.log(backend.threads, backend.threadStats().workerTasks > 0, c[0]);
        backend.dispose();
      `;
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        encoding: 'utf8',
        timeout: 30_000,
        cwd: folder,
      });
      expect(run.stderr).toBe('');
      expect(run.stdout.trim()).toBe('2 true 256');
      expect(run.status).toBe(0);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
