/**
 * The training kernels at sizes that take the parallel path (several query tiles and key blocks,
 * GQA, a cache with stale rows, many rows of a loss or a norm), and whole-model gradients:
 *   - threaded WebAssembly gives exactly the single-threaded result: every output element is written
 *     by one task, and every sum runs in an order fixed by the shapes alone;
 *   - WebAssembly agrees with the TypeScript kernels (float64 accumulation) within float32 rounding;
 *   - two runs of valueAndGrads around DiffTransformer.loss give the same bits, on 3 threads as on 1.
 */
import {
  DiffTransformer,
  ops,
  tensor,
  tidy,
  valueAndGrads,
  type AttentionKind,
  type Backend,
  type Tensor,
} from '@diff-transformer/core';
import { createCpuBackend } from '@diff-transformer/backend-cpu';
import { afterAll, describe, expect, it } from 'vitest';
import { expectClose, product, randomArray } from './helpers.js';

const single = await createCpuBackend({ engine: 'wasm-simd128', threads: 1 });
// More threads than this machine may have cores: workers that get little CPU simply claim fewer tasks.
const threaded = await createCpuBackend({ engine: 'wasm-simd128', threads: 3 });
const typescript = await createCpuBackend({ engine: 'typescript' });
afterAll(() => {
  for (const b of [single, threaded, typescript]) b.dispose();
});

/** A workload: builds its inputs on a backend and runs kernels, returning every output to compare. */
type Workload = (backend: Backend) => Tensor[];

const input = (backend: Backend, shape: number[], seed: number, scale = 1, offset = 0): Tensor =>
  tensor(
    randomArray(product(shape), seed).map((x) => offset + scale * x),
    shape,
    { backend },
  );

interface AttentionCase {
  batch: number;
  tokens: number;
  keys: number;
  heads: number;
  kvHeads: number;
  dk: number;
  dv: number;
  sharedKeys: boolean;
  lambdaPerToken: boolean;
  norm: 'weight' | 'plain' | null;
  causal: boolean;
  keyOffset: number;
}
const attentionCase = (c: Partial<AttentionCase>): AttentionCase => ({
  batch: 2,
  tokens: 150,
  keys: 150,
  heads: 4,
  kvHeads: 2,
  dk: 32,
  dv: 64,
  sharedKeys: false,
  lambdaPerToken: false,
  norm: 'weight',
  causal: true,
  keyOffset: 0,
  ...c,
});

const diffAttentionBackward =
  (c: AttentionCase): Workload =>
  (backend) => {
    const kHeads = c.sharedKeys ? c.kvHeads : 2 * c.kvHeads;
    const q = input(backend, [c.batch, c.tokens, 2 * c.heads, c.dk], 11);
    const k = input(backend, [c.batch, c.keys, kHeads, c.dk], 12);
    const v = input(backend, [c.batch, c.keys, c.kvHeads, c.dv], 13);
    const lambda = input(backend, c.lambdaPerToken ? [c.batch, c.tokens, c.heads] : [c.heads], 14, 0.2, 0.5);
    const weight = c.norm === 'weight' ? input(backend, [c.dv], 15, 0.3, 1) : null;
    const options = {
      causal: c.causal,
      keyOffset: c.keyOffset,
      keyLength: c.causal ? c.keyOffset + c.tokens : c.keys - 7,
      norm: c.norm ? { weight, eps: 1e-5, outputScale: 0.8 } : null,
    };
    const dOut = input(backend, [c.batch, c.tokens, c.heads, c.dv], 16);
    const { output, statistics } = ops.diffAttentionWithStatistics(q, k, v, lambda, options);
    const g = ops.diffAttentionBackward(q, k, v, lambda, statistics, dOut, options);
    return [
      output,
      statistics.logSumExp,
      statistics.mapOutputs!,
      g.dq,
      g.dk,
      g.dv,
      g.dLambda,
      ...(g.dNormWeight ? [g.dNormWeight] : []),
    ];
  };

const attentionBackward =
  (c: Pick<AttentionCase, 'batch' | 'tokens' | 'heads' | 'kvHeads' | 'dk' | 'dv' | 'causal'>): Workload =>
  (backend) => {
    const q = input(backend, [c.batch, c.tokens, c.heads, c.dk], 21);
    const k = input(backend, [c.batch, c.tokens, c.kvHeads, c.dk], 22);
    const v = input(backend, [c.batch, c.tokens, c.kvHeads, c.dv], 23);
    const dOut = input(backend, [c.batch, c.tokens, c.heads, c.dv], 24);
    const { output, statistics } = ops.attentionWithStatistics(q, k, v, { causal: c.causal });
    const g = ops.attentionBackward(q, k, v, output, statistics.logSumExp, dOut, { causal: c.causal });
    return [output, statistics.logSumExp, g.dq, g.dk, g.dv];
  };

const attentions: Array<[string, Workload]> = [
  ['diffAttentionBackward V1, GQA 2, causal, fused norm with weight', diffAttentionBackward(attentionCase({}))],
  [
    'diffAttentionBackward V2 shared keys, per-token λ, no norm, dv 32',
    diffAttentionBackward(attentionCase({ sharedKeys: true, lambdaPerToken: true, norm: null, dv: 32 })),
  ],
  [
    'diffAttentionBackward chunk of 70 tokens at offset 100 of a cache of 200, norm without weight',
    diffAttentionBackward(attentionCase({ tokens: 70, keys: 200, keyOffset: 100, norm: 'plain', heads: 8 })),
  ],
  [
    'diffAttentionBackward non-causal, dv 24 and dk 20 (padded), 7 stale cache rows',
    diffAttentionBackward(attentionCase({ dv: 24, dk: 20, causal: false, tokens: 77, keys: 150 })),
  ],
  [
    'attentionBackward, GQA 4, causal, T 150',
    attentionBackward({ batch: 1, tokens: 150, heads: 4, kvHeads: 1, dk: 64, dv: 64, causal: true }),
  ],
  [
    'attentionBackward dv 20, non-causal',
    attentionBackward({ batch: 2, tokens: 90, heads: 2, kvHeads: 2, dk: 16, dv: 20, causal: false }),
  ],
];

const lightKernels: Array<[string, Workload]> = [
  [
    'rmsNormBackward [600, 257] with weight',
    (backend) => {
      const g = ops.rmsNormBackward(
        input(backend, [600, 257], 31, 3),
        input(backend, [257], 32, 0.3, 1),
        input(backend, [600, 257], 33),
        1e-5,
      );
      return [g.dx, g.dWeight!];
    },
  ],
  [
    'swigluBackward [300, 517]',
    (backend) => {
      const g = ops.swigluBackward(
        input(backend, [300, 517], 34, 8),
        input(backend, [300, 517], 35),
        input(backend, [300, 517], 36),
      );
      return [g.dGate, g.dUp];
    },
  ],
  [
    'crossEntropy [300, 1031]',
    (backend) => {
      const targets = tensor(
        Int32Array.from({ length: 300 }, (_, i) => (i % 17 === 0 ? -100 : (i * 7919) % 1031)),
        [300],
        { backend, dtype: 'int32' },
      );
      const r = ops.crossEntropyWithGradient(input(backend, [300, 1031], 37, 3), targets, { scale: 1 / 282 });
      return [r.loss, r.dLogits];
    },
  ],
  [
    'embeddingBackward, 3000 ids over 2000 rows of width 96',
    (backend) => {
      const ids = tensor(
        Int32Array.from({ length: 3000 }, (_, i) => (i * i * 31) % 2000),
        [3, 1000],
        { backend, dtype: 'int32' },
      );
      return [ops.embeddingBackward(ids, input(backend, [3, 1000, 96], 38), 2000)];
    },
  ],
  ['sumSquares [1000, 517]', (backend) => [ops.sumSquares(input(backend, [1000, 517], 39))]],
  [
    'adamw [300, 517], step 5',
    (backend) => {
      const param = input(backend, [300, 517], 40);
      const m = input(backend, [300, 517], 41, 0.01);
      const v = tensor(
        randomArray(300 * 517, 42).map((x) => (0.01 * x) ** 2),
        [300, 517],
        { backend },
      );
      const attrs = {
        learningRate: 1e-2,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weightDecay: 0.1,
        step: 5,
        gradScale: 0.5,
      };
      ops.adamw(param, input(backend, [300, 517], 43, 0.1), m, v, attrs);
      return [param, m, v];
    },
  ],
];

const run = async (workload: Workload, backend: Backend): Promise<Float32Array[]> =>
  Promise.all(tidy(() => workload(backend)).map(async (t) => (await t.data()) as Float32Array));

function maxAbs(values: Float32Array): number {
  let max = 0;
  for (const x of values) max = Math.max(max, Math.abs(x));
  return max;
}

/** Bit-for-bit equality, reporting the first differing element. */
function expectIdentical(actual: Float32Array, expected: Float32Array, what = ''): void {
  expect(actual.length, what).toBe(expected.length);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const first = a.findIndex((bits, i) => bits !== b[i]);
  if (first >= 0) expect.fail(`${what} element ${first}: ${actual[first]} ≠ ${expected[first]}`);
}

describe('training kernels: threaded and single-threaded WebAssembly give identical results', () => {
  it.each([...attentions, ...lightKernels])('%s', async (_name, workload) => {
    const before = threaded.threadStats().parallelPhases;
    const many = await run(workload, threaded);
    const one = await run(workload, single);
    for (const [i, output] of many.entries()) expectIdentical(output, one[i], `output ${i}`);
    // The kernels woke the workers (they ran in parallel), yet nothing changed.
    expect(threaded.threadStats().parallelPhases).toBeGreaterThan(before);
  });
});

describe('training kernels: WebAssembly SIMD agrees with the TypeScript kernels', () => {
  it.each([...attentions, ...lightKernels])('%s', async (_name, workload) => {
    const simd = await run(workload, threaded);
    const scalar = await run(workload, typescript);
    for (const [i, output] of simd.entries()) {
      // Relative to the output's own scale: gradients sum many float32 terms.
      expectClose(output, scalar[i], 2e-5 * maxAbs(scalar[i]), 1e-4);
    }
  });
});

describe.each<AttentionKind>(['differential', 'differential-v2', 'standard'])('%s model gradients', (attention) => {
  const config = {
    vocabSize: 300,
    hiddenSize: 128,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    intermediateSize: 256,
    attention,
    maxPositions: 256,
  };
  const ids = [
    Array.from({ length: 160 }, (_, t) => (t * 37 + 11) % 300),
    Array.from({ length: 160 }, (_, t) => (t * t) % 300),
  ];
  const targets = ids.map((row) => row.map((id, t) => (t === 0 ? -100 : (id * 7 + 3) % 300)));

  const gradients = async (backend: Backend): Promise<Map<string, Float32Array>> => {
    const model = DiffTransformer.create(config, { backend, seed: 3, perturbNorms: 0.1 });
    try {
      const { value, grads } = valueAndGrads(() => model.loss(ids, targets), model.parameters);
      const out = new Map<string, Float32Array>([['loss', (await value.data()) as Float32Array]]);
      for (const [name, g] of grads) out.set(name, (await g.data()) as Float32Array);
      value.dispose();
      for (const g of grads.values()) g.dispose();
      return out;
    } finally {
      model.dispose();
    }
  };

  const expectSame = (a: Map<string, Float32Array>, b: Map<string, Float32Array>) => {
    expect([...a.keys()]).toEqual([...b.keys()]);
    for (const [name, values] of a) expectIdentical(values, b.get(name)!, name);
  };

  it('two runs with the same seed give the same bits, on 3 threads and on 1', async () => {
    const first = await gradients(threaded);
    expectSame(await gradients(threaded), first);
    // The task partition does not depend on the thread count, nor does any sum's order.
    expectSame(await gradients(single), first);
  });

  it('two runs of the TypeScript engine give the same bits, close to WebAssembly', async () => {
    const first = await gradients(typescript);
    expectSame(await gradients(typescript), first);
    const simd = await gradients(threaded);
    for (const [name, values] of first) {
      const scale = maxAbs(values);
      expectClose(simd.get(name)!, values, 1e-4 * scale, 1e-3);
    }
  });
});
