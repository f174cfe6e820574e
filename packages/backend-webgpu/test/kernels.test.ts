/**
 * The paths of this backend that only its own options or sizes reach, beyond the shared suite
 * (test/conformance.test.ts runs every case, the large ones included, on the default backend): the
 * scalar large matmul tile and split-K attention forced at every size, both through the shared suite;
 * that GEMV and split-K take the dispatches they should; a prefill dispatched in ranges of query
 * blocks; the attention shader's workgroup memory against its declarations; and memory that stays
 * linear in the context (no T×S buffer).
 */
import { runConformance } from '@diff-transformer/conformance';
import { createWebGPUBackend, type WebGPUBackend } from '@diff-transformer/backend-webgpu';
import { createRandom, ops, tensor, type Tensor } from '@diff-transformer/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DISPATCH_WORK, blockRanges, partitionsFor } from '../src/kernels/attention.js';
import { attentionProgram, attentionWorkgroupFloats } from '../src/shaders/attention.js';

let gpu: WebGPUBackend;
let splitting: WebGPUBackend;
let scalarTile: WebGPUBackend;
let blockByBlock: WebGPUBackend;
beforeAll(async () => {
  gpu = await createWebGPUBackend();
  scalarTile = await createWebGPUBackend({ largeMatmulTile: 'large' });
  // Splits every attention call it can: at least 8 keys per partition, never "enough" workgroups.
  splitting = await createWebGPUBackend({ splitKeys: { targetWorkgroups: 1e9, minKeysPerPartition: 8 } });
  // Dispatches every prefill one query block at a time.
  blockByBlock = await createWebGPUBackend({ splitKeys: { maxDispatchWork: 1 } });
});
afterAll(async () => {
  await gpu.dispose();
  await splitting.dispose();
  await scalarTile.dispose();
  await blockByBlock.dispose();
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

describe('attention workgroup memory and prefill dispatches', () => {
  it('counts every workgroup variable of the shader, each rounded up to 16 bytes', () => {
    const shapes = [
      { maps: 2, keyMaps: 2, dk: 64, dv: 128, bq: 16, bk: 13 },
      { maps: 1, keyMaps: 1, dk: 17, dv: 33, bq: 1, bk: 7 },
      { maps: 2, keyMaps: 1, dk: 32, dv: 32, bq: 1, bk: 64 },
    ] as const;
    for (const shape of shapes) {
      const code = attentionProgram({ ...shape, split: false }).code();
      const declared = [...code.matchAll(/var<workgroup> \w+: array<f32, (\d+)>/g)].map((m) => Number(m[1]));
      expect(declared.length).toBe(7);
      const counted = declared.reduce((sum, floats) => sum + Math.ceil(floats / 4) * 4, 0);
      expect(attentionWorkgroupFloats(shape), JSON.stringify(shape)).toBe(counted);
    }
  });

  it('cuts a long prefill into ranges of query blocks that cover each block once', () => {
    // diffAttention B1 H16 d64 (V 128), causal, T = 32768: 2048 blocks of 16 queries.
    const work = (block: number) => 16 * 2 * 16 * (64 + 128) * Math.min(32768, (block + 1) * 16);
    const ranges = blockRanges(2048, work, MAX_DISPATCH_WORK);
    expect(ranges.length).toBeGreaterThan(100);
    let next = 0;
    for (const [start, count] of ranges) {
      expect(start).toBe(next);
      let sum = 0;
      for (let b = start; b < start + count; b++) sum += work(b);
      expect(count === 1 || sum <= MAX_DISPATCH_WORK).toBe(true);
      next = start + count;
    }
    expect(next).toBe(2048);
    expect(blockRanges(5, () => 10, 1e9)).toEqual([[0, 5]]);
    expect(blockRanges(3, () => 10, 1)).toEqual([
      [0, 1],
      [1, 1],
      [2, 1],
    ]);
    expect(blockRanges(0, () => 10, 1)).toEqual([]);
  });

  it('a prefill of 50 queries is four dispatches when each holds one query block', async () => {
    const [q, k, v, lambda] = [
      random(blockByBlock, [1, 50, 4, 16]),
      random(blockByBlock, [1, 50, 4, 16], 2),
      random(blockByBlock, [1, 50, 2, 32], 3),
      random(blockByBlock, [2], 4),
    ];
    const before = blockByBlock.stats.dispatches;
    const y = ops.diffAttention(q, k, v, lambda);
    expect(blockByBlock.stats.dispatches - before).toBe(Math.ceil(50 / 16));
    await y.data();
    for (const t of [q, k, v, lambda, y]) t.dispose();
  });

  it('dispatched one query block at a time, prefills pass the shared attention cases', async () => {
    const report = await runConformance(blockByBlock, {
      filter: /^(diffAttention|attention)\/.*T(33|129)\b/,
      strict: true,
    });
    expect(report.cases.length).toBeGreaterThanOrEqual(6);
    expect(failures(report)).toEqual([]);
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
