/**
 * The paths of this backend that only its own options or sizes reach, beyond the shared suite
 * (test/conformance.test.ts runs every case, the large ones included, on the default backend): the
 * scalar large matmul tile and split-K attention forced at every size, both through the shared suite;
 * that GEMV and split-K take the dispatches they should; and memory that stays linear in the context
 * (no T×S buffer).
 */
import { runConformance } from '@diff-transformer/conformance';
import { createWebGPUBackend, type WebGPUBackend } from '@diff-transformer/backend-webgpu';
import { createRandom, ops, tensor, type Tensor } from '@diff-transformer/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionsFor } from '../src/kernels/attention.js';

let gpu: WebGPUBackend;
let splitting: WebGPUBackend;
let scalarTile: WebGPUBackend;
beforeAll(async () => {
  gpu = await createWebGPUBackend();
  scalarTile = await createWebGPUBackend({ largeMatmulTile: 'large' });
  // Splits every attention call it can: at least 8 keys per partition, never "enough" workgroups.
  splitting = await createWebGPUBackend({ splitKeys: { targetWorkgroups: 1e9, minKeysPerPartition: 8 } });
});
afterAll(async () => {
  await gpu.dispose();
  await splitting.dispose();
  await scalarTile.dispose();
});

/** A tensor of N(0, 1) values on a backend. */
function random(backend: WebGPUBackend, shape: number[], seed = 1): Tensor {
  const r = createRandom(seed);
  const values = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.normal());
  return tensor(values, shape, { backend });
}

/** The failures of a conformance run, as 'name: message' lines (empty when everything passed). */
function failures(report: Awaited<ReturnType<typeof runConformance>>): string[] {
  return report.cases.filter((r) => r.status !== 'pass').map((r) => `${r.name}: ${r.message ?? r.status}`);
}

describe('matmul', () => {
  it('the scalar large tile passes the shared matmul cases, the large ones included', async () => {
    const report = await runConformance(scalarTile, { filter: /^matmul\//, large: true, strict: true });
    expect(report.cases.filter((r) => /M520/.test(r.name))).toHaveLength(4);
    expect(failures(report)).toEqual([]);
  });

  for (const rows of [1, 2, 3, 4]) {
    it(`GEMV: ${rows} row(s) against a [301, 1000] Linear weight is one dispatch`, async () => {
      const x = random(gpu, [2, rows, 1000]);
      const w = random(gpu, [301, 1000], 2);
      const before = gpu.stats.dispatches;
      const y = ops.matmul(x, w, { transposeB: true });
      expect(gpu.stats.dispatches - before).toBe(1);
      await y.data();
      for (const t of [x, w, y]) t.dispose();
    });
  }
});

describe('split-K attention (decoding against a long cache)', () => {
  it('chooses partitions only when few workgroups would run and the cache is long', () => {
    expect(partitionsFor(1000, 4096, 16, {})).toEqual({ count: 1, chunk: 4096 });
    expect(partitionsFor(8, 100, 16, {})).toEqual({ count: 1, chunk: 100 });
    const p = partitionsFor(8, 4096, 16, {});
    expect(p.count).toBeGreaterThan(1);
    expect(p.chunk % 16).toBe(0);
    expect(p.count * p.chunk).toBeGreaterThanOrEqual(4096);
  });

  it('a decode step against 1600 keys is split by default: partitions, then the combine pass', async () => {
    const [q, k, v, lambda] = [
      random(gpu, [2, 1, 8, 32]),
      random(gpu, [2, 1600, 4, 32], 2),
      random(gpu, [2, 1600, 2, 64], 3),
      random(gpu, [4], 4),
    ];
    const before = gpu.stats.dispatches;
    const y = ops.diffAttention(q, k, v, lambda, { keyOffset: 1500, keyLength: 1501 });
    expect(gpu.stats.dispatches - before).toBe(2);
    await y.data();
    for (const t of [q, k, v, lambda, y]) t.dispose();
  });

  it('forced at every size, split-K passes the shared decode, chunk and non-causal attention cases', async () => {
    const report = await runConformance(splitting, {
      filter: /^(diffAttention|attention)\/.*(decode|chunk|non-causal)/,
      large: true,
      strict: true,
    });
    expect(report.cases.length).toBeGreaterThanOrEqual(12);
    expect(failures(report)).toEqual([]);
    // Splitting really happened: more dispatches than cases (each split call is two).
    expect(splitting.stats.dispatches).toBeGreaterThan(report.cases.length);
  });
});

describe('memory linear in the context', () => {
  it('diffAttention at T = S = 1024 allocates nothing near T×S', async () => {
    const [t, h, d] = [1024, 1, 16];
    const q = random(gpu, [1, t, 2 * h, d], 3);
    const k = random(gpu, [1, t, 2 * h, d], 4);
    const v = random(gpu, [1, t, h, 2 * d], 5);
    const lambda = random(gpu, [h], 6);
    await gpu.synchronize();
    const before = gpu.poolStats().storage.bytes;
    const out = ops.diffAttention(q, k, v, lambda);
    const values = await out.data();
    const grown = gpu.poolStats().storage.bytes - before;
    expect(values.every(Number.isFinite)).toBe(true);
    // The output itself (T·2d floats) and nothing of T·S floats.
    expect(grown).toBeLessThanOrEqual(t * 2 * d * 4 * 1.25);
    expect(grown).toBeLessThan(t * t * 4);
    for (const x of [q, k, v, lambda, out]) x.dispose();
  });
});
