/**
 * Guard mode of the CUDA backend, on a simulated addon: device memory is one ArrayBuffer and `add` is
 * a loop, so the bookkeeping of backend.ts (256 bytes of canaries around every pool allocation, pointers
 * offset past them, held frees, the read-back check) runs here without a GPU. On a GPU the same code
 * drives cudaMallocAsync and stream-ordered copies; the conformance run there (describeConformance)
 * runs every case in guard mode.
 */
import type { CudaAddon } from '@diff-transformer/backend-cuda';
import { runConformance } from '@diff-transformer/conformance';
import { ops, tensor } from '@diff-transformer/core';
import { describe, expect, it } from 'vitest';
import { createCudaBackend } from '../src/backend.js';

/** A device of 4 MiB behind the addon's interface; `add` writes `stray` elements past (or before) its output. */
function simulatedAddon(stray: 0 | 1 | -1) {
  const memory = new ArrayBuffer(4 << 20);
  const words = new Int32Array(memory);
  const floats = new Float32Array(memory);
  let top = 256;
  const allocations = new Set<number>();
  const addon = {
    version: 'simulated',
    init: () => ({
      ok: true,
      name: 'simulated device',
      major: 9,
      minor: 0,
      multiprocessors: 1,
      totalMemory: memory.byteLength,
      deviceCount: 1,
      driverVersion: 12000,
      runtimeVersion: 12000,
      forceSimt: false,
    }),
    alloc(bytes: number) {
      const pointer = top;
      top += Math.ceil(bytes / 256) * 256;
      allocations.add(pointer);
      return pointer;
    },
    free(pointer: number) {
      if (!allocations.delete(pointer)) throw new Error(`free of ${pointer}, which is not an allocation`);
    },
    zero: (pointer: number, bytes: number) => words.fill(0, pointer / 4, (pointer + bytes) / 4),
    // float32 and int32 are copied as they are (4 bytes each); no other dtype runs here.
    upload: (pointer: number, data: Float32Array | Int32Array) =>
      new Uint8Array(memory, pointer, data.byteLength).set(
        new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      ),
    read: async (pointer: number, count: number, dtype: number) =>
      dtype === 3 ? words.slice(pointer / 4, pointer / 4 + count) : floats.slice(pointer / 4, pointer / 4 + count),
    synchronize: async () => {},
    add(a: number, b: number, out: number, n: number) {
      for (let i = 0; i < n; i++) floats[out / 4 + i] = floats[a / 4 + i] + floats[b / 4 + i];
      if (stray === 1) floats[out / 4 + n] = 1;
      if (stray === -1) floats[out / 4 - 1] = 1;
    },
    dispose: () => {},
  };
  return { addon: addon as unknown as CudaAddon, allocations };
}

const backendWith = (stray: 0 | 1 | -1) => {
  const { addon, allocations } = simulatedAddon(stray);
  return { backend: createCudaBackend({ ok: true, addon, path: 'simulated' }), allocations };
};

describe('guard mode (cuda, simulated addon)', () => {
  it('passes the add cases with a correct kernel, in guard mode, and frees every allocation', async () => {
    const { backend, allocations } = backendWith(0);
    const report = await runConformance(backend, { filter: /^add\// });
    expect(report.summary).toEqual({ pass: report.cases.length, fail: 0, unsupported: 0 });
    expect(allocations.size).toBe(0);
  });

  it('fails every add case whose kernel writes one element past its output, or one before it', async () => {
    for (const [stray, side] of [
      [1, 'after the last'],
      [-1, 'before the first'],
    ] as const) {
      const { backend, allocations } = backendWith(stray);
      const report = await runConformance(backend, { filter: /^add\// });
      expect(report.cases.length).toBeGreaterThanOrEqual(3);
      for (const r of report.cases) {
        expect(r.message, r.name).toMatch(
          new RegExp(`^a kernel wrote outside its storage: 1 canary word\\(s\\) ${side} element of a float32`),
        );
      }
      expect(allocations.size).toBe(0);
    }
  });

  it('offsets pointers past the canaries, holds frees until the check, and releases when off', async () => {
    const { backend, allocations } = backendWith(1);
    backend.guards.enable(true);
    const x = tensor([1, 2, 3], [3], { backend });
    const y = ops.add(x, x);
    expect(Array.from(await y.data())).toEqual([2, 4, 6]);
    expect((y.storage as { pointer: number }).pointer % 256).toBe(0);
    y.dispose();
    x.dispose();
    expect(allocations.size).toBe(2);
    expect(await backend.guards.check()).toEqual([{ size: 3, dtype: 'float32', side: 'after', words: 1 }]);
    expect(allocations.size).toBe(0);
    expect(await backend.guards.check()).toEqual([]);
    const z = tensor([1], [1], { backend });
    backend.guards.enable(false);
    expect(allocations.size).toBe(1);
    z.dispose();
    expect(allocations.size).toBe(0);
  });
});
