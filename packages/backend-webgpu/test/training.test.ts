/**
 * The training kernels where the shared suite's small shapes do not reach, against the float64
 * reference of @diff-transformer/conformance: attention backward over several key blocks and query
 * tiles (causal skipping, keyOffset and keyLength inside a larger cache, GQA), the widest heads at WebGPU's default limits
 * (16 KiB of workgroup memory, 8 storage buffers), statistics from split-K decoding, repeated calls
 * giving the same bits, memory linear in the context, and the sizing of grids beyond 65 535 workgroups.
 */
import { createWebGPUBackend, type WebGPUBackend } from '@diff-transformer/backend-webgpu';
import { reference } from '@diff-transformer/conformance';
import {
  createRandom,
  ops,
  tensor,
  tidy,
  UnsupportedKernelError,
  type Backend,
  type DType,
  type Random,
  type Tensor,
} from '@diff-transformer/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../src/device/runtime.js';
import * as backward from '../src/kernels/attention-backward.js';
import { keyValueTile, queryTile } from '../src/kernels/attention-backward.js';
import * as gatherKernels from '../src/kernels/gather.js';
import { sumSquares } from '../src/kernels/reduce.js';
import * as rowKernels from '../src/kernels/rows.js';
import { keyValueWorkgroupFloats, queryWorkgroupFloats } from '../src/shaders/attention-backward.js';

let gpu: WebGPUBackend;
let small: WebGPUBackend;
let splitting: WebGPUBackend;
beforeAll(async () => {
  gpu = await createWebGPUBackend();
  small = await createWebGPUBackend({ limits: 'default' });
  splitting = await createWebGPUBackend({ splitKeys: { targetWorkgroups: 1e9, minKeysPerPartition: 8 } });
});
afterAll(async () => {
  await gpu.dispose();
  await small.dispose();
  await splitting.dispose();
});

function nmse(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    num += (actual[i] - expected[i]) ** 2;
    den += expected[i] ** 2;
  }
  return den === 0 ? num : num / den;
}

/** A tensor on `backend` and its float64 twin, from the same random values. */
function input(backend: Backend, random: Random, shape: number[], scale = 1, offset = 0) {
  const values = Float32Array.from(
    { length: shape.reduce((a, b) => a * b, 1) },
    () => offset + scale * random.normal(),
  );
  return { tensor: tensor(values, shape, { backend }), ref: reference.refTensor(values, shape) };
}

interface DiffSpec {
  readonly batch: number;
  readonly tokens: number;
  readonly keys: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly dk: number;
  readonly dv: number;
  readonly keyMaps: 1 | 2;
  readonly perToken: boolean;
  readonly causal: boolean;
  readonly keyOffset: number;
  readonly keyLength: number;
  readonly norm: 'weight' | 'no weight' | null;
}

/** diffAttentionBackward (through the backend's own statistics) against the reference; NMSE per gradient. */
async function diffBackward(backend: Backend, spec: DiffSpec, seed = 1): Promise<Record<string, number>> {
  const random = createRandom(seed);
  const { batch: b, tokens: t, keys: s, heads: h, kvHeads: hkv, dk, dv } = spec;
  const q = input(backend, random, [b, t, 2 * h, dk]);
  const k = input(backend, random, [b, s, spec.keyMaps * hkv, dk]);
  const v = input(backend, random, [b, s, hkv, dv]);
  const lambda = input(backend, random, spec.perToken ? [b, t, h] : [h], 0.3, 0.5);
  const weight = input(backend, random, [dv], 0.3, 1);
  const dOut = input(backend, random, [b, t, h, dv]);
  const mask = { causal: spec.causal, keyOffset: spec.keyOffset, keyLength: spec.keyLength, scale: 1 / Math.sqrt(dk) };
  const norm = spec.norm ? { eps: 1e-5, outputScale: 0.8 } : null;
  const options = {
    ...mask,
    norm: norm && { ...norm, weight: spec.norm === 'weight' ? weight.tensor : null },
  };
  const g = tidy(() => {
    const { statistics } = ops.diffAttentionWithStatistics(q.tensor, k.tensor, v.tensor, lambda.tensor, options);
    return ops.diffAttentionBackward(q.tensor, k.tensor, v.tensor, lambda.tensor, statistics, dOut.tensor, options);
  });
  const expected = reference.diffAttentionBackward(
    q.ref,
    k.ref,
    v.ref,
    lambda.ref,
    spec.norm === 'weight' ? weight.ref : null,
    dOut.ref,
    { ...mask, norm },
  );
  const result: Record<string, number> = {
    dq: nmse(await g.dq.data(), expected.dq.data),
    dk: nmse(await g.dk.data(), expected.dk.data),
    dv: nmse(await g.dv.data(), expected.dv.data),
    dLambda: nmse(await g.dLambda.data(), expected.dLambda.data),
  };
  if (expected.dNormWeight) result.dNormWeight = nmse(await g.dNormWeight!.data(), expected.dNormWeight.data);
  for (const x of [q, k, v, lambda, weight, dOut]) x.tensor.dispose();
  for (const x of [g.dq, g.dk, g.dv, g.dLambda, g.dNormWeight]) x?.dispose();
  return result;
}

/** attentionBackward against the reference; NMSE per gradient. */
async function standardBackward(
  backend: Backend,
  spec: Omit<DiffSpec, 'keyMaps' | 'perToken' | 'norm'>,
  seed = 2,
): Promise<Record<string, number>> {
  const random = createRandom(seed);
  const { batch: b, tokens: t, keys: s, heads: h, kvHeads: hkv, dk, dv } = spec;
  const q = input(backend, random, [b, t, h, dk]);
  const k = input(backend, random, [b, s, hkv, dk]);
  const v = input(backend, random, [b, s, hkv, dv]);
  const dOut = input(backend, random, [b, t, h, dv]);
  const mask = { causal: spec.causal, keyOffset: spec.keyOffset, keyLength: spec.keyLength, scale: 1 / Math.sqrt(dk) };
  const g = tidy(() => {
    const { output, statistics } = ops.attentionWithStatistics(q.tensor, k.tensor, v.tensor, mask);
    return ops.attentionBackward(q.tensor, k.tensor, v.tensor, output, statistics.logSumExp, dOut.tensor, mask);
  });
  const expected = reference.attentionBackward(q.ref, k.ref, v.ref, dOut.ref, mask);
  const result = {
    dq: nmse(await g.dq.data(), expected.dq.data),
    dk: nmse(await g.dk.data(), expected.dk.data),
    dv: nmse(await g.dv.data(), expected.dv.data),
  };
  for (const x of [q, k, v, dOut]) x.tensor.dispose();
  for (const x of [g.dq, g.dk, g.dv]) x.dispose();
  return result;
}

function expectAllBelow(errors: Record<string, number>, tolerance: number): void {
  for (const [name, error] of Object.entries(errors)) expect(error, name).toBeLessThan(tolerance);
}

describe('attention backward over several key blocks and query tiles', () => {
  it('DIFF V1, gqa2 d32, T = S = 150, B 2, causal, subln with weight', async () => {
    const spec = { batch: 2, tokens: 150, keys: 150, heads: 4, kvHeads: 2, dk: 32, dv: 64, keyMaps: 2 as const };
    const errors = await diffBackward(gpu, {
      ...spec,
      perToken: false,
      causal: true,
      keyOffset: 0,
      keyLength: 150,
      norm: 'weight',
    });
    expectAllBelow(errors, 1e-9);
  });

  it('DIFF V2 (shared keys, per-token λ), gqa4 d16, T 40 against 110 of 130 cached keys, non-causal', async () => {
    const spec = { batch: 1, tokens: 40, keys: 130, heads: 4, kvHeads: 1, dk: 16, dv: 16, keyMaps: 1 as const };
    const errors = await diffBackward(gpu, {
      ...spec,
      perToken: true,
      causal: false,
      keyOffset: 0,
      keyLength: 110,
      norm: null,
    });
    expectAllBelow(errors, 1e-9);
  });

  it('standard attention, gqa2 d64, a causal chunk of T 70 at keyOffset 90 (160 of 180 cached keys)', async () => {
    const errors = await standardBackward(gpu, {
      batch: 1,
      tokens: 70,
      keys: 180,
      heads: 4,
      kvHeads: 2,
      dk: 64,
      dv: 64,
      causal: true,
      keyOffset: 90,
      keyLength: 160,
    });
    expectAllBelow(errors, 1e-9);
  });
});

describe("WebGPU's default limits: 16 KiB of workgroup memory, 8 storage buffers per stage", () => {
  it('the device has them, and the widest heads still get tiles that fit', () => {
    expect(small.limits.maxComputeWorkgroupStorageSize).toBe(16384);
    expect(small.limits.maxStorageBuffersPerShaderStage).toBe(8);
    for (const budget of [16384, 32768]) {
      for (const shape of [
        { maps: 2, keyMaps: 2, dk: 128, dv: 256 },
        { maps: 2, keyMaps: 1, dk: 128, dv: 128 },
        { maps: 1, keyMaps: 1, dk: 256, dv: 256 },
      ] as const) {
        const kv = keyValueTile(shape, budget)!;
        const qt = queryTile(shape, budget)!;
        expect(keyValueWorkgroupFloats(shape, kv) * 4).toBeLessThanOrEqual(budget);
        expect(queryWorkgroupFloats(shape, qt) * 4).toBeLessThanOrEqual(budget);
      }
    }
  });

  it('DIFF V1 with d 128 (dv 256), gqa2, T 20, subln with weight', async () => {
    const errors = await diffBackward(small, {
      batch: 1,
      tokens: 20,
      keys: 20,
      heads: 2,
      kvHeads: 1,
      dk: 128,
      dv: 256,
      keyMaps: 2,
      perToken: false,
      causal: true,
      keyOffset: 0,
      keyLength: 20,
      norm: 'weight',
    });
    expectAllBelow(errors, 1e-9);
  });

  it('standard attention with d 128, T 24', async () => {
    const spec = { batch: 1, tokens: 24, keys: 24, heads: 2, kvHeads: 2, dk: 128, dv: 128 };
    expectAllBelow(await standardBackward(small, { ...spec, causal: true, keyOffset: 0, keyLength: 24 }), 1e-9);
  });

  it('heads too wide for the workgroup memory are reported unsupported, not computed elsewhere', () => {
    const [dk, dv] = [2048, 4096];
    const make = (shape: number[]) =>
      tensor(new Float32Array(shape.reduce((a, b) => a * b)), shape, { backend: small });
    const [q, k, v, lambda, dOut] = [[1, 1, 2, dk], [1, 1, 2, dk], [1, 1, 1, dv], [1], [1, 1, 1, dv]].map(make);
    const statistics = { logSumExp: make([1, 1, 1, 2]), mapOutputs: make([1, 1, 1, 2, dv]) };
    expect(() => ops.diffAttentionBackward(q, k, v, lambda, statistics, dOut)).toThrow(UnsupportedKernelError);
    for (const x of [q, k, v, lambda, dOut, statistics.logSumExp, statistics.mapOutputs]) x.dispose();
  });
});

describe('statistics of split-K decoding', () => {
  it('diffAttentionWithStatistics: the combine pass writes the same log-sum-exp and map outputs', async () => {
    const random = createRandom(5);
    const [b, t, s, h, hkv, dk, dv] = [2, 1, 200, 4, 2, 32, 64];
    const shapes = [[b, t, 2 * h, dk], [b, s, 2 * hkv, dk], [b, s, hkv, dv], [h], [dv]];
    const values = shapes.map((shape) =>
      Float32Array.from({ length: shape.reduce((x, y) => x * y) }, () => random.normal()),
    );
    const mask = { causal: true, keyOffset: 150, keyLength: 151, scale: 1 / Math.sqrt(dk) };
    const norm = { eps: 1e-5, outputScale: 0.8 };
    const expected = reference.diffAttentionWithStatistics(
      ...(values.map((x, i) => reference.refTensor(x, shapes[i])) as [
        ReturnType<typeof reference.refTensor>,
        ReturnType<typeof reference.refTensor>,
        ReturnType<typeof reference.refTensor>,
        ReturnType<typeof reference.refTensor>,
        ReturnType<typeof reference.refTensor>,
      ]),
      { ...mask, norm },
    );
    for (const backend of [splitting, gpu]) {
      const [q, k, v, lambda, weight] = values.map((x, i) => tensor(x, shapes[i], { backend }));
      const dispatches = backend.stats.dispatches;
      const r = ops.diffAttentionWithStatistics(q, k, v, lambda, { ...mask, norm: { ...norm, weight } });
      expect(backend.stats.dispatches - dispatches).toBe(backend === splitting ? 2 : 1);
      expect(nmse(await r.output.data(), expected.output.data)).toBeLessThan(1e-10);
      expect(nmse(await r.statistics.logSumExp.data(), expected.logSumExp.data)).toBeLessThan(1e-12);
      expect(nmse(await r.statistics.mapOutputs!.data(), expected.mapOutputs.data)).toBeLessThan(1e-10);
      for (const x of [q, k, v, lambda, weight, r.output, r.statistics.logSumExp, r.statistics.mapOutputs!])
        x.dispose();
    }
  });
});

describe('deterministic: the same inputs give the same bits', () => {
  async function twice(make: () => Tensor[]): Promise<void> {
    const first = make();
    const firstData = await Promise.all(first.map((x) => x.data()));
    const second = make();
    const secondData = await Promise.all(second.map((x) => x.data()));
    for (let i = 0; i < first.length; i++) expect(Array.from(secondData[i])).toEqual(Array.from(firstData[i]));
    for (const x of [...first, ...second]) x.dispose();
  }

  it('diffAttentionBackward, embeddingBackward, rmsNormBackward, crossEntropy and sumSquares', async () => {
    const random = createRandom(9);
    const make = (shape: number[]) => input(gpu, random, shape).tensor;
    const [q, k, v, lambda, dOut] = [[2, 40, 8, 16], [2, 40, 4, 16], [2, 40, 2, 32], [4], [2, 40, 4, 32]].map(make);
    const ids = tensor(
      Int32Array.from({ length: 300 }, () => Math.floor(random.next() * 5)),
      [300],
      { backend: gpu },
    );
    const rows = make([300, 48]);
    const weight = make([48]);
    const targets = tensor(
      Int32Array.from({ length: 300 }, () => Math.floor(random.next() * 48)),
      [300],
      { backend: gpu },
    );
    await twice(() =>
      tidy(() => {
        const options = { norm: { weight: null, eps: 1e-5, outputScale: 0.8 } };
        const { statistics } = ops.diffAttentionWithStatistics(q, k, v, lambda, options);
        const g = ops.diffAttentionBackward(q, k, v, lambda, statistics, dOut, options);
        const norm = ops.rmsNormBackward(rows, weight, rows, 1e-5);
        const loss = ops.crossEntropyWithGradient(rows, targets, { ignoreIndex: -100, scale: 1 / 300 });
        return [
          g.dq,
          g.dk,
          g.dv,
          g.dLambda,
          ops.embeddingBackward(ids, rows, 5),
          norm.dx,
          norm.dWeight!,
          loss.loss,
          loss.dLogits,
          ops.sumSquares(rows),
        ];
      }),
    );
    for (const x of [q, k, v, lambda, dOut, ids, rows, weight, targets]) x.dispose();
  });
});

describe('memory linear in the context', () => {
  it('diffAttentionBackward at T = S = 1024 allocates nothing near T×S', async () => {
    const [t, h, d] = [1024, 1, 16];
    const random = createRandom(3);
    const make = (shape: number[]) => input(gpu, random, shape).tensor;
    const [q, k, v, lambda, dOut] = [[1, t, 2 * h, d], [1, t, 2 * h, d], [1, t, h, 2 * d], [h], [1, t, h, 2 * d]].map(
      make,
    );
    const { statistics } = ops.diffAttentionWithStatistics(q, k, v, lambda);
    await gpu.synchronize();
    const before = gpu.poolStats().storage.bytes;
    const g = ops.diffAttentionBackward(q, k, v, lambda, statistics, dOut);
    const dq = await g.dq.data();
    const grown = gpu.poolStats().storage.bytes - before;
    expect(dq.every(Number.isFinite)).toBe(true);
    // The gradients (like q, k, v, λ) and scratch of a few floats per row, nothing of T·S floats.
    const gradients = (2 * t * 2 * h * d + t * h * 2 * d + h) * 4;
    const scratch = (t * h * 2 * d + t * h * 8) * 4;
    expect(grown).toBeLessThanOrEqual((gradients + scratch) * 1.25);
    expect(grown).toBeLessThan(t * t * 4);
    for (const x of [q, k, v, lambda, dOut, statistics.logSumExp, statistics.mapOutputs!]) x.dispose();
    for (const x of [g.dq, g.dk, g.dv, g.dLambda]) x.dispose();
  });
});

describe('grids of more than 65 535 workgroups are split', () => {
  /** A runtime that records dispatches instead of running them: the host-side sizing at any scale. */
  function recordingRuntime() {
    const dispatches: Array<{ key: string; groups: readonly number[] }> = [];
    const rt = {
      limits: { maxComputeWorkgroupStorageSize: 16384 },
      absent: {},
      allocate: (bytes: number, dtype: string) => ({ bytes, dtype }),
      clear: () => {},
      free: () => {},
      dispatch: (program: { key: string }, _bindings: unknown, _params: unknown, groups: readonly number[]) => {
        dispatches.push({ key: program.key, groups });
      },
    };
    return { rt: rt as unknown as Runtime, dispatches };
  }
  const view = (shape: number[], dtype: DType = 'float32') => ({ storage: {}, shape, dtype });
  const spec = (shape: number[], dtype: DType = 'float32') => ({ shape, dtype });

  it('every training kernel at sizes whose workgroups do not fit one dimension', () => {
    const { rt, dispatches } = recordingRuntime();
    // 2^20 tokens, 32 heads over 8 kv groups: every pass of the attention backward needs > 65 535 workgroups.
    const [b, t, h, hkv, dk, dv] = [1, 1 << 20, 32, 8, 64, 128];
    const mask = { causal: true, keyOffset: 0, keyLength: t, scale: 0.125, norm: { eps: 1e-5, outputScale: 0.8 } };
    const q = view([b, t, 2 * h, dk]);
    const k = view([b, t, 2 * hkv, dk]);
    const v = view([b, t, hkv, dv]);
    backward.diffAttentionBackward(
      rt,
      q,
      k,
      v,
      view([h]),
      view([dv]),
      { logSumExp: view([b, t, h, 2]), mapOutputs: view([b, t, h, 2, dv]) },
      view([b, t, h, dv]),
      mask,
      { dq: q, dk: k, dv: v, dLambda: spec([h]), dNormWeight: spec([dv]) },
    );
    const rows = view([100_000, 50]);
    rowKernels.crossEntropy(
      rt,
      rows,
      view([100_000], 'int32'),
      { ignoreIndex: -100, scale: 1e-5 },
      {
        loss: spec([1]),
        dLogits: rows,
      },
    );
    rowKernels.rmsNormBackward(rt, rows, view([50]), rows, { eps: 1e-5 }, { dx: rows, dWeight: spec([50]) });
    gatherKernels.embeddingBackward(
      rt,
      view([1000], 'int32'),
      view([1000, 8]),
      { vocabSize: 20_000_000 },
      spec([20_000_000, 8]),
    );
    sumSquares(rt, view([1 << 28]), {}, spec([1]));
    for (const d of dispatches) {
      expect(
        d.groups.every((n) => Number.isInteger(n) && n >= 1 && n <= 65535),
        d.key,
      ).toBe(true);
    }
    // The sizing is exercised: these needed a second dimension.
    const split = new Set(dispatches.filter((d) => d.groups[1] > 1).map((d) => d.key.split('/').slice(0, 2).join('/')));
    for (const key of [
      'attention-backward/rows',
      'attention-backward/key-major',
      'attention-backward/query-major',
      'rows/crossEntropy',
      'rows/rmsNormBackward',
      'gather/embeddingChains',
      'gather/embeddingSum',
      'reduce/squares',
    ])
      expect(split, key).toContain(key);
  });
});
