/**
 * The paths the shared suite's small shapes do not reach, checked against the CPU backend: the
 * large and skinny matmul tiles, split-K attention (decoding against a long cache, with its combine
 * pass), and memory that stays linear in the context (no T×S buffer).
 */
import { createCpuBackend } from '@diff-transformer/backend-cpu';
import { createWebGPUBackend, type WebGPUBackend } from '@diff-transformer/backend-webgpu';
import { createRandom, ops, tensor, type Backend, type Tensor } from '@diff-transformer/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DISPATCH_WORK, blockRanges, partitionsFor } from '../src/kernels/attention.js';
import { attentionProgram, attentionWorkgroupFloats } from '../src/shaders/attention.js';

let cpu: Backend;
let gpu: WebGPUBackend;
let splitting: WebGPUBackend;
let scalarTile: WebGPUBackend;
let blockByBlock: WebGPUBackend;
beforeAll(async () => {
  cpu = await createCpuBackend();
  gpu = await createWebGPUBackend();
  scalarTile = await createWebGPUBackend({ largeMatmulTile: 'large' });
  // Splits every attention call it can: at least 8 keys per partition, never "enough" workgroups.
  splitting = await createWebGPUBackend({ splitKeys: { targetWorkgroups: 1e9, minKeysPerPartition: 8 } });
  // Dispatches a prefill one query block at a time.
  blockByBlock = await createWebGPUBackend({ splitKeys: { maxDispatchWork: 1 } });
});
afterAll(async () => {
  await gpu.dispose();
  await splitting.dispose();
  await scalarTile.dispose();
  await blockByBlock.dispose();
  await cpu.dispose?.();
});

function nmse(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    num += (actual[i] - expected[i]) ** 2;
    den += expected[i] ** 2;
  }
  return num / den;
}

/** The same random inputs on both backends, the op on each, and the NMSE of the results. */
async function compare(
  shapes: number[][],
  op: (inputs: Tensor[]) => Tensor,
  backends: [Backend, Backend] = [cpu, gpu],
  seed = 1,
): Promise<number> {
  const random = createRandom(seed);
  const values = shapes.map((shape) =>
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random.normal()),
  );
  const results: Float32Array[] = [];
  for (const backend of backends) {
    const inputs = values.map((v, i) => tensor(v, shapes[i], { backend }));
    const out = op(inputs);
    results.push((await out.data()) as Float32Array);
    out.dispose();
    for (const t of inputs) t.dispose();
  }
  expect(results[1].length).toBe(results[0].length);
  return nmse(results[1], results[0]);
}

describe('matmul tiles beyond the suite’s sizes', () => {
  for (const [transposeA, transposeB] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ]) {
    const layout = `transposeA ${transposeA} transposeB ${transposeB}`;
    it(`large 128×128 tiles (vec4 and scalar), M 520 K 45 N 530, ${layout}`, async () => {
      const [m, k, n] = [520, 45, 530];
      const a = transposeA ? [k, m] : [m, k];
      const b = transposeB ? [n, k] : [k, n];
      expect(await compare([a, b], ([x, y]) => ops.matmul(x, y, { transposeA, transposeB }))).toBeLessThan(1e-10);
      expect(
        await compare([a, b], ([x, y]) => ops.matmul(x, y, { transposeA, transposeB }), [cpu, scalarTile]),
      ).toBeLessThan(1e-10);
    });
  }

  it('skinny tile: 3 rows against a [70, 300] weight, batched', async () => {
    expect(
      await compare(
        [
          [2, 3, 70],
          [70, 300],
        ],
        ([x, w]) => ops.matmul(x, w),
      ),
    ).toBeLessThan(1e-10);
  });

  for (const rows of [1, 2, 3, 4]) {
    it(`GEMV: ${rows} row(s) against a [301, 1000] Linear weight, shared and batched`, async () => {
      const before = gpu.stats.dispatches;
      expect(
        await compare(
          [
            [2, rows, 1000],
            [301, 1000],
          ],
          ([x, w]) => ops.matmul(x, w, { transposeB: true }),
        ),
      ).toBeLessThan(1e-10);
      expect(
        await compare(
          [
            [3, rows, 33],
            [3, 7, 33],
          ],
          ([x, w]) => ops.matmul(x, w, { transposeB: true }),
        ),
      ).toBeLessThan(1e-10);
      expect(gpu.stats.dispatches - before).toBe(2);
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

  const cases = [
    {
      label: 'V1 decode T1 at offset 150 of a 200-key cache, gqa2 d32',
      t: 1,
      s: 200,
      h: 4,
      hkv: 2,
      dk: 32,
      dv: 64,
      keyMaps: 2,
      perToken: false,
      keyOffset: 150,
      norm: true,
    },
    {
      label: 'V1 chunk T5 at offset 90 of 120 keys, gqa4 d16, no norm',
      t: 5,
      s: 120,
      h: 4,
      hkv: 1,
      dk: 16,
      dv: 32,
      keyMaps: 2,
      perToken: false,
      keyOffset: 90,
      norm: false,
    },
    {
      label: 'V2 decode T1, shared keys, per-token λ, 77 keys, d16',
      t: 1,
      s: 77,
      h: 2,
      hkv: 1,
      dk: 16,
      dv: 16,
      keyMaps: 1,
      perToken: true,
      keyOffset: 76,
      norm: false,
    },
    {
      label: 'V1 non-causal T3 over 200 keys, norm without weight',
      t: 3,
      s: 200,
      h: 2,
      hkv: 2,
      dk: 16,
      dv: 32,
      keyMaps: 2,
      perToken: false,
      keyOffset: 0,
      norm: true,
      causal: false,
    },
  ];
  for (const c of cases) {
    it(`diffAttention: ${c.label} equals the CPU backend, split and unsplit`, async () => {
      const b = 2;
      const shapes = [
        [b, c.t, 2 * c.h, c.dk],
        [b, c.s, c.keyMaps * c.hkv, c.dk],
        [b, c.s, c.hkv, c.dv],
        c.perToken ? [b, c.t, c.h] : [c.h],
        [c.dv],
      ];
      const causal = c.causal ?? true;
      const keyLength = causal ? c.keyOffset + c.t : c.s;
      const op = ([q, k, v, lambda, weight]: Tensor[]) =>
        ops.diffAttention(q, k, v, lambda, {
          causal,
          keyOffset: c.keyOffset,
          keyLength,
          norm: c.norm
            ? { weight: c.label.includes('without weight') ? null : weight, eps: 1e-5, outputScale: 0.8 }
            : null,
        });
      const dispatchesBefore = splitting.stats.dispatches;
      expect(await compare(shapes, op, [cpu, splitting])).toBeLessThan(1e-10);
      expect(splitting.stats.dispatches - dispatchesBefore).toBe(2); // the partitions, then the combine pass
      expect(await compare(shapes, op, [cpu, gpu])).toBeLessThan(1e-10);
    });
  }

  it('standard attention: decode T1 against 300 keys, gqa2, split', async () => {
    const shapes = [
      [1, 1, 4, 32],
      [1, 300, 2, 32],
      [1, 300, 2, 32],
    ];
    const op = ([q, k, v]: Tensor[]) => ops.attention(q, k, v, { keyOffset: 250, keyLength: 251 });
    expect(await compare(shapes, op, [cpu, splitting])).toBeLessThan(1e-10);
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

  it('a prefill dispatched one query block at a time equals the CPU backend', async () => {
    const [t, h, d] = [50, 2, 16];
    const shapes = [[1, t, 2 * h, d], [1, t, 2 * h, d], [1, t, h, 2 * d], [h], [2 * d]];
    const op = ([q, k, v, lambda, weight]: Tensor[]) =>
      ops.diffAttention(q, k, v, lambda, { norm: { weight, eps: 1e-5, outputScale: 0.8 } });
    const before = blockByBlock.stats.dispatches;
    expect(await compare(shapes, op, [cpu, blockByBlock])).toBeLessThan(1e-10);
    expect(blockByBlock.stats.dispatches - before).toBe(Math.ceil(t / 16));
  });
});

describe('memory linear in the context', () => {
  it('diffAttention at T = S = 1024 allocates nothing near T×S', async () => {
    const [t, h, d] = [1024, 1, 16];
    const random = createRandom(3);
    const make = (shape: number[]) =>
      tensor(
        Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => random.normal()),
        shape,
        { backend: gpu },
      );
    const q = make([1, t, 2 * h, d]);
    const k = make([1, t, 2 * h, d]);
    const v = make([1, t, h, 2 * d]);
    const lambda = make([h]);
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
