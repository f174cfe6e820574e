/**
 * The backend object and its device runtime: description and registration, storage semantics, the
 * buffer pool, command batching (one submit per forward), deferred frees, typed device errors, and
 * a create → forward → dispose loop that must not leak.
 */
import {
  BackendDisposedError,
  BackendUnavailableError,
  DTypeError,
  DeviceError,
  DiffTransformer,
  KERNEL_NAMES,
  disposeBackend,
  initializedBackend,
  listBackends,
  memory,
  ops,
  registeredBackends,
  setBackend,
  tensor,
  tidy,
  zeros,
} from '@diff-transformer/core';
import {
  WEBGPU_PRIORITY,
  WEBGPU_SOFTWARE_PRIORITY,
  createWebGPUBackend,
  softwareAdapterReason,
  type WebGPUBackend,
} from '@diff-transformer/backend-webgpu';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { debugFromEnvironment } from '../src/device/pipelines.js';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

const TINY = { vocabSize: 64, hiddenSize: 32, numLayers: 2, numHeads: 2 } as const;

let backend: WebGPUBackend;
beforeAll(async () => {
  backend = await createWebGPUBackend();
});
afterAll(async () => {
  await backend.dispose();
});

describe('the backend object', () => {
  it('describes its adapter and implements every kernel of the contract', () => {
    expect(backend.name).toBe('webgpu');
    expect(backend.device).toMatch(/^WebGPU \(.+; .+; float32(; software adapter)?\)$/);
    expect([...backend.dtypes]).toEqual(['float32', 'int32']);
    for (const kernel of KERNEL_NAMES) expect(typeof backend.kernels[kernel], kernel).toBe('function');
    expect(backend.limits.maxComputeWorkgroupStorageSize).toBeGreaterThanOrEqual(16384);
  });

  it('upload copies, read returns a fresh copy, int32 stays Int32Array, zeros are zero', async () => {
    const host = new Float32Array([1, 2, 3]);
    const t = tensor(host, [3], { backend });
    host[0] = 99;
    const first = await t.data();
    first[1] = -7;
    expect(Array.from(await t.data())).toEqual([1, 2, 3]);
    const ids = tensor(new Int32Array([5, -3, 2147483647]), [3], { backend });
    const data = await ids.data();
    expect(data).toBeInstanceOf(Int32Array);
    expect(Array.from(data)).toEqual([5, -3, 2147483647]);
    const z = zeros([2, 3], { backend, dtype: 'int32' });
    expect(Array.from(await z.data())).toEqual([0, 0, 0, 0, 0, 0]);
    for (const x of [t, ids, z]) x.dispose();
  });

  it('refuses float16 and bfloat16 storage with a DTypeError', () => {
    expect(() => tensor([1, 2], [2], { backend, dtype: 'float16' })).toThrow(DTypeError);
    expect(() => backend.upload(new Float32Array(2), 'bfloat16')).toThrow(/float32 \| int32/);
    expect(backend.supports?.('matmul', 'float16')).toMatch(/float32 and int32/);
  });
});

describe('registration', () => {
  it('importing the package registers webgpu at priority 200, available here', async () => {
    expect(registeredBackends()).toContain('webgpu');
    const info = (await listBackends()).find((b) => b.name === 'webgpu');
    expect(info).toMatchObject({ name: 'webgpu', priority: WEBGPU_PRIORITY, available: true });
    expect(info?.device).toMatch(/^WebGPU/);
  });

  it('tells software adapters (SwiftShader, llvmpipe, WARP, a fallback adapter) from GPUs', () => {
    const gpu = { vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H200' };
    expect(softwareAdapterReason(gpu)).toBeNull();
    expect(softwareAdapterReason({ ...gpu, isFallbackAdapter: false })).toBeNull();
    expect(softwareAdapterReason({ ...gpu, isFallbackAdapter: true })).toMatch(/fallback adapter/);
    for (const description of [
      'SwiftShader driver 5.0.0',
      'llvmpipe (LLVM 15.0.6, 256 bits)',
      'Microsoft Basic Render Driver',
    ])
      expect(softwareAdapterReason({ ...gpu, description }), description).toContain(`"${description}"`);
    expect(softwareAdapterReason({ ...gpu, vendor: 'microsoft', architecture: 'warp' })).toMatch(/software adapter/);
    // A name that merely contains the letters is not a match.
    expect(softwareAdapterReason({ ...gpu, description: 'Stalwart GPU' })).toBeNull();
  });

  it('on a software adapter ranks itself below the cpu backend, and runs when asked for by name', async () => {
    if (backend.softwareAdapter === null) {
      expect(backend.effectivePriority).toBeUndefined();
      return;
    }
    expect(backend.effectivePriority).toEqual({
      value: WEBGPU_SOFTWARE_PRIORITY,
      reason: expect.stringMatching(/software adapter .*slower than the cpu backend; ask for it by name/),
    });
    expect(WEBGPU_SOFTWARE_PRIORITY).toBeLessThan(100);
    expect(backend.device).toMatch(/; software adapter\)$/);
    const info = (await listBackends()).find((b) => b.name === 'webgpu');
    expect(info).toMatchObject({ priority: WEBGPU_PRIORITY, effectivePriority: WEBGPU_SOFTWARE_PRIORITY });
    expect((await setBackend('webgpu')).name).toBe('webgpu');
  });

  it('reports unavailable with the reason when there is no adapter, and nothing crashes', async () => {
    const noAdapter = { requestAdapter: async () => null };
    await expect(createWebGPUBackend({ gpu: noAdapter })).rejects.toThrow(BackendUnavailableError);
    await expect(createWebGPUBackend({ gpu: noAdapter })).rejects.toThrow(/no WebGPU adapter.*VK_ICD_FILENAMES/);
    await expect(createWebGPUBackend({ dawnNodePath: '/nonexistent/dawn.node' })).rejects.toThrow(
      /dawn\.node not found at \/nonexistent/,
    );
  });

  it.runIf(existsSync(join(packageDir, 'dist/index.js')))(
    'imports without the optional webgpu package and says what to install',
    () => {
      // The built package and core alone in a fresh node_modules: `webgpu` cannot be resolved there.
      const dir = mkdtempSync(join(tmpdir(), 'webgpu-missing-'));
      try {
        const installed = join(dir, 'node_modules/@diff-transformer');
        mkdirSync(join(installed, 'backend-webgpu'), { recursive: true });
        cpSync(join(packageDir, 'dist'), join(installed, 'backend-webgpu/dist'), { recursive: true });
        cpSync(join(packageDir, 'package.json'), join(installed, 'backend-webgpu/package.json'));
        symlinkSync(join(packageDir, '../core'), join(installed, 'core'));
        const script = `
        await import('@diff-transformer/backend-webgpu');
        const { listBackends } = await import('@diff-transformer/core');
        console.log(JSON.stringify(await listBackends()));`;
        const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
          cwd: dir,
          encoding: 'utf8',
        });
        const webgpu = JSON.parse(out).find((b: { name: string }) => b.name === 'webgpu');
        expect(webgpu).toMatchObject({ available: false });
        expect(webgpu.reason).toMatch(
          /Dawn's Node binding is not installed .*install the optional dependency `webgpu`/,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('buffer pool', () => {
  it('reuses a released buffer of the same size class instead of creating one', async () => {
    const a = tensor(new Float32Array(1000), [1000], { backend });
    a.dispose();
    await backend.synchronize();
    const before = backend.poolStats().storage;
    const b = tensor(new Float32Array(1000), [1000], { backend });
    const c = tensor(new Float32Array(990), [990], { backend }); // same size class, no idle buffer left: new
    const after = backend.poolStats().storage;
    expect(after.reused - before.reused).toBe(1);
    expect(after.created - before.created).toBe(1);
    b.dispose();
    c.dispose();
  });

  it('the pipeline cache compiles a program once per shape class', async () => {
    const x = tensor(new Float32Array(8), [8], { backend });
    const first = ops.add(x, x);
    const before = backend.stats;
    const second = ops.add(x, x);
    expect(backend.stats.pipelinesCreated).toBe(before.pipelinesCreated);
    expect(backend.stats.pipelineCacheHits).toBeGreaterThan(before.pipelineCacheHits);
    for (const t of [x, first, second]) t.dispose();
  });
});

describe('the WGSL of a pipeline', () => {
  it('pipelineSources() gives the key and WGSL of each compiled pipeline', async () => {
    const x = tensor(new Float32Array(8), [8], { backend });
    const y = ops.add(x, x);
    const add = backend.pipelineSources().find((s) => s.key === 'elementwise/add');
    expect(add?.wgsl).toMatch(/fn main\(/);
    expect(add?.wgsl).toContain('y[i] = a[i] + b[i];');
    for (const t of [x, y]) t.dispose();
  });

  it('the debug option prints the WGSL of matching programs once, as they compile', async () => {
    const printing = await createWebGPUBackend({ debug: { timings: false, wgsl: /^elementwise\/add$/ } });
    const printed: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((line: string) => printed.push(line));
    try {
      const x = tensor(new Float32Array(8), [8], { backend: printing });
      const sums = [ops.add(x, x), ops.add(x, x)];
      const sig = ops.sigmoid(x);
      await sig.data();
      expect(printed).toHaveLength(1);
      expect(printed[0]).toMatch(/^\/\/ webgpu: WGSL of elementwise\/add\n/);
      expect(printed[0]).toContain('y[i] = a[i] + b[i];');
      for (const t of [x, ...sums, sig]) t.dispose();
    } finally {
      spy.mockRestore();
      await printing.dispose();
    }
  });

  it('DIFFTX_DEBUG_WGSL is 1 (every program) or a regular expression over program keys', () => {
    const saved = { wgsl: process.env.DIFFTX_DEBUG_WGSL, timings: process.env.DIFFTX_DEBUG_PIPELINES };
    try {
      delete process.env.DIFFTX_DEBUG_PIPELINES;
      delete process.env.DIFFTX_DEBUG_WGSL;
      expect(debugFromEnvironment()).toEqual({ timings: false, wgsl: null });
      process.env.DIFFTX_DEBUG_WGSL = '1';
      expect(debugFromEnvironment().wgsl?.test('attention/anything')).toBe(true);
      process.env.DIFFTX_DEBUG_WGSL = '^matmul/';
      process.env.DIFFTX_DEBUG_PIPELINES = '1';
      const debug = debugFromEnvironment();
      expect(debug.timings).toBe(true);
      expect([debug.wgsl?.test('matmul/large'), debug.wgsl?.test('elementwise/add')]).toEqual([true, false]);
      process.env.DIFFTX_DEBUG_WGSL = '(';
      expect(() => debugFromEnvironment()).toThrow(/DIFFTX_DEBUG_WGSL: expected '1' or a regular expression/);
    } finally {
      for (const [name, value] of [
        ['DIFFTX_DEBUG_WGSL', saved.wgsl],
        ['DIFFTX_DEBUG_PIPELINES', saved.timings],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});

describe('command batching', () => {
  it('a whole forward pass is one submit, made when the logits are read', async () => {
    const model = DiffTransformer.create(TINY, { backend, seed: 1 });
    await backend.synchronize();
    const before = backend.stats;
    const logits = tidy(() => model.forward([[1, 2, 3, 4, 5]]));
    expect(backend.stats.submits).toBe(before.submits); // nothing submitted while recording
    expect(backend.stats.dispatches - before.dispatches).toBeGreaterThan(20);
    const values = await logits.data();
    expect(values.every(Number.isFinite)).toBe(true);
    expect(backend.stats.submits - before.submits).toBe(1);
    logits.dispose();
    model.dispose();
  });

  it('a long chain without readback is submitted in batches of at most maxBatch dispatches', async () => {
    const small = await createWebGPUBackend({ maxBatch: 16 });
    try {
      let x = tensor(new Float32Array([1]), [1], { backend: small });
      for (let i = 0; i < 40; i++) {
        const next = ops.add(x, x);
        x.dispose();
        x = next;
      }
      expect(small.stats.submits).toBe(2); // after dispatch 16 and 32
      expect(Array.from(await x.data())).toEqual([2 ** 40]);
      expect(small.stats.submits).toBe(3);
      x.dispose();
    } finally {
      await small.dispose();
    }
  });
});

describe('deferred free', () => {
  it('a buffer freed while unsubmitted work reads it is not reused before that work completes', async () => {
    const n = 4096;
    const a = tensor(
      Float32Array.from({ length: n }, (_, i) => i),
      [n],
      { backend },
    );
    const sum = ops.add(a, a); // recorded, not submitted
    const deferredBefore = backend.stats.deferredFrees;
    a.dispose();
    expect(backend.stats.deferredFrees).toBe(deferredBefore + 1);
    // Same size class: were a's buffer reused now, this upload (run by the queue ahead of the pending
    // batch) would overwrite a before the add reads it.
    const b = tensor(new Float32Array(n).fill(-1), [n], { backend });
    const values = await sum.data();
    expect(values[0]).toBe(0);
    expect(values[n - 1]).toBe(2 * (n - 1));
    expect(Array.from(await b.data()).every((x) => x === -1)).toBe(true);
    sum.dispose();
    b.dispose();
  });
});

describe('device errors', () => {
  it('an allocation over the memory limit or the adapter maximum is DEVICE_OUT_OF_MEMORY', async () => {
    const limited = await createWebGPUBackend({ memoryLimitBytes: 1 << 20 });
    try {
      const fits = zeros([1024], { backend: limited });
      let error: unknown;
      try {
        zeros([1 << 19], { backend: limited }); // 2 MiB
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(DeviceError);
      expect((error as DeviceError).code).toBe('DEVICE_OUT_OF_MEMORY');
      expect(() => limited.zeros(limited.limits.maxBufferSize, 'float32')).toThrow(
        /larger than the adapter's largest storage buffer/,
      );
      // The backend stays usable after a refused allocation.
      expect(Array.from(await fits.data()).length).toBe(1024);
      fits.dispose();
    } finally {
      await limited.dispose();
    }
  });

  it('a lost device turns every later call into DEVICE_LOST, and dispose still works', async () => {
    const doomed = await createWebGPUBackend();
    const x = tensor(new Float32Array([1, 2]), [2], { backend: doomed });
    doomed.loseDevice();
    // Loss is reported asynchronously: the pending readback fails first, then every call says why.
    await expect(x.data()).rejects.toThrow(DeviceError);
    const lost = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return e;
      }
      return null;
    };
    let error = lost(() => ops.add(x, x));
    for (let wait = 0; (error as DeviceError | null)?.code !== 'DEVICE_LOST' && wait < 100; wait++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      error = lost(() => ops.add(x, x));
    }
    expect(error).toBeInstanceOf(DeviceError);
    expect((error as DeviceError).code).toBe('DEVICE_LOST');
    expect((error as DeviceError).message).toMatch(/device was lost.*create it again/);
    await expect(x.data()).rejects.toThrow(/device was lost/);
    x.dispose(); // freeing on a lost device is harmless
    await doomed.dispose();
  });
});

describe('create → forward → dispose', () => {
  it('leaks nothing over repeated cycles: core storages, the backend’s storages, its pooled buffers', async () => {
    const startCore = memory('webgpu').liveStorages;
    for (let cycle = 0; cycle < 4; cycle++) {
      const b = await createWebGPUBackend();
      const model = DiffTransformer.create(TINY, { backend: b, seed: cycle });
      const logits = tidy(() => model.forward([[1, 2, 3]]));
      expect((await logits.data()).length).toBe(3 * TINY.vocabSize);
      logits.dispose();
      model.dispose();
      await b.synchronize();
      expect(b.stats.liveStorages).toBe(0);
      expect(memory('webgpu').liveStorages).toBe(startCore);
      const pool = b.poolStats().storage;
      expect(pool.inUse).toBe(0);
      await b.dispose();
      const after = b.poolStats();
      expect(after.storage.buffers + after.staging.buffers + after.uniform.buffers).toBe(0);
      expect(after.storage.created).toBe(after.storage.destroyed);
    }
  });

  it('through the registry: setBackend → forward → disposeBackend, again and again', async () => {
    const start = memory('webgpu').liveStorages;
    for (let cycle = 0; cycle < 3; cycle++) {
      const b = (await setBackend('webgpu')) as WebGPUBackend;
      const model = DiffTransformer.create(TINY, { seed: cycle });
      const logits = tidy(() => model.forward([[4, 5]]));
      await logits.data();
      logits.dispose();
      model.dispose();
      await disposeBackend('webgpu');
      expect(b.poolStats().storage.buffers).toBe(0);
      expect(memory('webgpu').liveStorages).toBe(start);
    }
    expect((await initializedBackend('webgpu')).name).toBe('webgpu');
    await disposeBackend('webgpu');
  });

  it('after disposeBackend, its tensors and models refuse use with BackendDisposedError, as on cpu', async () => {
    const start = memory('webgpu');
    await setBackend('webgpu');
    const model = DiffTransformer.create(TINY, { seed: 5 });
    const t = tensor([1, 2], [2]);
    await disposeBackend('webgpu');
    await expect(t.data()).rejects.toThrow(BackendDisposedError);
    expect(() => model.forward([[1]])).toThrow(BackendDisposedError);
    expect(() => ops.add(t, t)).toThrow(/disposeBackend\('webgpu'\)/);
    t.dispose();
    model.dispose();
    expect(memory('webgpu')).toEqual(start);
  });

  it('a KV cache that grows (copied on the device by cacheWrite) decodes as one full forward pass', async () => {
    const model = DiffTransformer.create({ ...TINY, numHeads: 4, numKvHeads: 2 }, { seed: 7, backend });
    const ids = [5, 17, 3, 33, 42, 61, 7, 29, 30];
    const full = tidy(() => model.forward([ids]));
    const expected = await full.dataFloat();
    full.dispose();
    const start = memory('webgpu').liveStorages;
    const cache = model.createCache(1, 2);
    const decoded: number[] = [];
    for (const chunk of [ids.slice(0, 3), ...ids.slice(3).map((id) => [id])]) {
      const logits = model.forward([chunk], { cache });
      decoded.push(...(await logits.dataFloat()));
      logits.dispose();
    }
    expect(cache.capacity).toBe(16);
    cache.dispose();
    expect(memory('webgpu').liveStorages).toBe(start);
    for (let i = 0; i < expected.length; i++) expect(decoded[i]).toBeCloseTo(expected[i], 4);
    model.dispose();
  });

  it('to(backend) copies a model to the cpu backend and back; the original stays and still runs', async () => {
    await import('@diff-transformer/backend-cpu');
    const model = DiffTransformer.create(TINY, { seed: 6, backend });
    const onCpu = await model.to('cpu');
    expect(onCpu.backend.name).toBe('cpu');
    expect(model.backend).toBe(backend);
    const back = await onCpu.to(backend);
    expect(back.backend).toBe(backend);
    const logits = async (m: DiffTransformer) => {
      const out = tidy(() => m.forward([[1, 2, 3]]));
      const values = await out.dataFloat();
      out.dispose();
      return values;
    };
    const [original, cpu, returned] = [await logits(model), await logits(onCpu), await logits(back)];
    expect(returned).toEqual(original);
    for (let i = 0; i < original.length; i++) expect(cpu[i]).toBeCloseTo(original[i], 4);
    for (const m of [model, onCpu, back]) m.dispose();
  });
});
