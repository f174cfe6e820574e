/**
 * Guard mode (core's BackendGuards) on pooled GPU buffers: the tensor starts past 256 bytes of canaries
 * and is bound from there to the end of its buffer, so a shader that writes past its last element
 * writes into canaries that the check reads back. The stray write here is a real WGSL one: the
 * cacheWrite shader (which trusts core's bounds check) asked to write one row past a storage's end.
 */
import { createWebGPUBackend, type WebGPUBackend } from '@diff-transformer/backend-webgpu';
import { runConformance } from '@diff-transformer/conformance';
import type { InferenceKernels, StorageHandle } from '@diff-transformer/core';
import { ops, tensor } from '@diff-transformer/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let gpu: WebGPUBackend;
beforeAll(async () => {
  gpu = await createWebGPUBackend();
});
afterAll(async () => {
  await gpu.dispose();
});

/** Writes 1.0 at element `index` of a float32 storage of `length` elements, through the cacheWrite shader. */
function writeAt(storage: StorageHandle, length: number, index: number): void {
  const one = gpu.upload(new Float32Array([1]), 'float32');
  gpu.kernels.cacheWrite!(
    { storage, shape: [1, length], dtype: 'float32' },
    { storage: one, shape: [1, 1], dtype: 'float32' },
    { position: index },
  );
  gpu.free(one);
}

describe('guard mode (webgpu)', () => {
  it('a kernel writing one element past its output fails every add case; the others pass', async () => {
    const add: InferenceKernels['add'] = (a, b, attrs, out) => {
      const y = gpu.kernels.add!(a, b, attrs, out);
      const length = out.shape.reduce((p, d) => p * d, 1);
      writeAt(y, length, length);
      return y;
    };
    const broken = { ...gpu, kernels: { ...gpu.kernels, add } };
    const report = await runConformance(broken, { filter: /^(add|swiglu)\// });
    const addCases = report.cases.filter((r) => r.kernel === 'add');
    expect(addCases.length).toBeGreaterThanOrEqual(3);
    for (const r of addCases) {
      expect(r.status, r.name).toBe('fail');
      expect(r.message).toMatch(
        /^a kernel wrote outside its storage: 1 canary word\(s\) after the last element of a float32 storage of \d+$/,
      );
      expect(r.nmse!).toBeLessThanOrEqual(r.tolerance);
    }
    for (const r of report.cases.filter((c) => c.kernel === 'swiglu')) expect(r.status, r.name).toBe('pass');
    expect(gpu.guards.enabled).toBe(false);
  });

  it('holds freed buffers until the check, reports each violation once, and re-arms live ones', async () => {
    gpu.guards.enable(true);
    try {
      const x = tensor([1, 2, 3], [3], { backend: gpu });
      const y = ops.add(x, x);
      writeAt(y.storage, 3, 3);
      expect(Array.from(await y.data())).toEqual([2, 4, 6]);
      y.dispose();
      x.dispose();
      expect(await gpu.guards.check()).toEqual([{ size: 3, dtype: 'float32', side: 'after', words: 1 }]);
      expect(await gpu.guards.check()).toEqual([]);
      const z = tensor([1, 2], [2], { backend: gpu });
      writeAt(z.storage, 2, 2);
      expect(await gpu.guards.check()).toEqual([{ size: 2, dtype: 'float32', side: 'after', words: 1 }]);
      expect(await gpu.guards.check()).toEqual([]);
      writeAt(z.storage, 2, 2);
      expect(await gpu.guards.check()).toEqual([{ size: 2, dtype: 'float32', side: 'after', words: 1 }]);
      z.dispose();
    } finally {
      gpu.guards.enable(false);
    }
    // Storages made in guard mode read, write and free like any other.
    expect(gpu.stats.liveStorages).toBe(0);
  });
});
