/**
 * Long contexts: the attention kernels stream keys, so memory stays linear in the context. A T×S
 * float32 score matrix at T = S = 8192 would be 268 MB; a kernel must allocate far less: measured as
 * the WebAssembly heap's peak for the WebAssembly engine, as array-buffer growth for the TypeScript
 * one. Sampled rows are checked against the float64 reference run for that one query. The backward
 * kernels recompute probabilities tile by tile and are held to the same bound; their gradients are
 * checked through identities of exact arithmetic: each row's probabilities sum to 1, so Σ_s dV_s =
 * Σ_t (1 − λ)·dOut_t (λ = 0 for standard attention), and each row's dS sums to 0, so Σ_s dK_s = 0.
 */
import { ops, tensor, type Tensor } from '@diff-transformer/core';
import { createCpuBackend, type CpuBackend } from '@diff-transformer/backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reference } from '@diff-transformer/conformance';
import { ENGINES, expectClose, randomArray } from './helpers.js';

const MiB = 1024 * 1024;

/** Bytes a kernel call allocates beyond what was live before it (outputs and scratch). */
function allocatedBy<T>(backend: CpuBackend, run: () => T): { result: T; bytes: number } {
  const heap = backend.heapStats();
  if (heap) {
    backend.resetHeapPeak();
    const result = run();
    return { result, bytes: backend.heapStats()!.peakBytes - heap.usedBytes };
  }
  const before = process.memoryUsage().arrayBuffers;
  const result = run();
  return { result, bytes: process.memoryUsage().arrayBuffers - before };
}

/** Computes once, on first use: the decode cases' inputs and float64 references serve every engine. */
function once<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

const diffDecode = once(() => {
  const S = 32768;
  const heads = 2;
  const kvHeads = 1;
  const dk = 64;
  const dv = 128;
  const shapes = { q: [1, 1, 2 * heads, dk], k: [1, S, 2 * kvHeads, dk], v: [1, S, kvHeads, dv], lambda: [heads] };
  const q = randomArray(2 * heads * dk, 8);
  const k = randomArray(S * 2 * kvHeads * dk, 9);
  const v = randomArray(S * kvHeads * dv, 10);
  const lambda = Float32Array.from([0.3, 0.7]);
  const mask = { causal: true, keyOffset: S - 1, keyLength: S, scale: 1 / Math.sqrt(dk) };
  const norm = { weight: null, eps: 1e-5, outputScale: 0.5 };
  const { refTensor } = reference;
  const expected = reference.diffAttention(
    refTensor(q, shapes.q),
    refTensor(k, shapes.k),
    refTensor(v, shapes.v),
    refTensor(lambda, shapes.lambda),
    null,
    { ...mask, norm: { eps: norm.eps, outputScale: norm.outputScale } },
  ).data;
  return { q, k, v, lambda, mask, norm, shapes, expected };
});

const standardDecode = once(() => {
  const S = 32768;
  const dk = 64;
  const shapes = { q: [1, 1, 4, dk], k: [1, S, 1, dk], v: [1, S, 1, dk] };
  const q = randomArray(4 * dk, 11);
  const k = randomArray(S * dk, 12);
  const v = randomArray(S * dk, 13);
  const mask = { causal: true, keyOffset: S - 1, keyLength: S, scale: 1 / Math.sqrt(dk) };
  const { refTensor } = reference;
  const expected = reference.attention(refTensor(q, shapes.q), refTensor(k, shapes.k), refTensor(v, shapes.v), mask);
  return { q, k, v, mask, shapes, expected: expected.data };
});

describe.each(ENGINES)('streaming attention at long context (%s engine)', (engine) => {
  let backend: CpuBackend;
  beforeAll(async () => {
    backend = await createCpuBackend({ engine });
  });
  afterAll(() => backend.dispose());
  const upload = (values: ArrayLike<number>, shape: readonly number[]): Tensor => tensor(values, shape, { backend });

  it('diffAttention at T = S = 8192 allocates nothing of size T×S', async () => {
    const T = 8192;
    const dk = 4;
    const dv = 8;
    const q = randomArray(T * 2 * dk, 1);
    const k = randomArray(T * 2 * dk, 2);
    const v = randomArray(T * dv, 3);
    const qt = upload(q, [1, T, 2, dk]);
    const kt = upload(k, [1, T, 2, dk]);
    const vt = upload(v, [1, T, 1, dv]);
    const lambda = upload([0.6], [1]);
    const weight = upload(randomArray(dv, 4), [dv]);
    const norm = { weight, eps: 1e-5, outputScale: 0.8 };

    const { result: y, bytes } = allocatedBy(backend, () => ops.diffAttention(qt, kt, vt, lambda, { norm }));
    expect(bytes).toBeLessThan(32 * MiB);

    const out = (await y.data()) as Float32Array;
    const hostWeight = (await weight.data()) as Float32Array;
    // Every sampled query reads keys and values from the same float64 copies.
    const refKeys = {
      q: (values: Float32Array) => reference.refTensor(values, [1, 1, 2, dk]),
      k: reference.refTensor(k, [1, T, 2, dk]),
      v: reference.refTensor(v, [1, T, 1, dv]),
    };
    for (const t of [0, 1, 63, 64, 4095, T - 1]) {
      // Query t alone, decoding at position t against the first t + 1 keys, is the same computation.
      const expected = reference.diffAttention(
        refKeys.q(q.subarray(t * 2 * dk, (t + 1) * 2 * dk)),
        refKeys.k,
        refKeys.v,
        reference.refTensor([0.6], [1]),
        reference.refTensor(hostWeight, [dv]),
        {
          causal: true,
          keyOffset: t,
          keyLength: t + 1,
          scale: 1 / Math.sqrt(dk),
          norm: { eps: 1e-5, outputScale: 0.8 },
        },
      );
      expectClose(out.subarray(t * dv, (t + 1) * dv), expected.data, 1e-4, 1e-3);
    }
  });

  it('attention at T = S = 8192 allocates nothing of size T×S', () => {
    const T = 8192;
    const dk = 4;
    const dv = 8;
    const qt = upload(randomArray(T * dk, 5), [1, T, 1, dk]);
    const kt = upload(randomArray(T * dk, 6), [1, T, 1, dk]);
    const vt = upload(randomArray(T * dv, 7), [1, T, 1, dv]);
    const { result: y, bytes } = allocatedBy(backend, () => ops.attention(qt, kt, vt));
    expect(bytes).toBeLessThan(32 * MiB);
    expect(y.shape).toEqual([1, T, 1, dv]);
  });

  it.each([
    ['diffAttentionBackward', 0.6],
    ['attentionBackward', 0],
  ] as const)('%s at T = S = 8192 allocates nothing of size T×S', async (kernel, lambdaValue) => {
    const T = 8192;
    const dk = 4;
    const dv = 8;
    const maps = kernel === 'diffAttentionBackward' ? 2 : 1;
    const q = upload(randomArray(T * maps * dk, 21), [1, T, maps, dk]);
    const k = upload(randomArray(T * maps * dk, 22), [1, T, maps, dk]);
    const v = upload(randomArray(T * dv, 23), [1, T, 1, dv]);
    const dOut = randomArray(T * dv, 24);
    const dOutTensor = upload(dOut, [1, T, 1, dv]);
    const lambda = upload([lambdaValue], [1]);
    const run =
      kernel === 'diffAttentionBackward'
        ? () => {
            const { statistics } = ops.diffAttentionWithStatistics(q, k, v, lambda);
            return allocatedBy(backend, () => ops.diffAttentionBackward(q, k, v, lambda, statistics, dOutTensor));
          }
        : () => {
            const { output, statistics } = ops.attentionWithStatistics(q, k, v);
            return allocatedBy(backend, () => ops.attentionBackward(q, k, v, output, statistics.logSumExp, dOutTensor));
          };
    const { result: grads, bytes } = run();
    expect(bytes).toBeLessThan(32 * MiB);

    const sums = async (t: Tensor, width: number): Promise<{ sum: Float64Array; magnitude: number }> => {
      const values = (await t.data()) as Float32Array;
      const sum = new Float64Array(width);
      let magnitude = 0;
      for (let i = 0; i < values.length; i++) {
        sum[i % width] += values[i];
        magnitude += Math.abs(values[i]);
      }
      return { sum, magnitude };
    };
    const expectedValueSum = new Float64Array(dv);
    for (let i = 0; i < dOut.length; i++) expectedValueSum[i % dv] += (1 - lambdaValue) * dOut[i];
    const values = await sums(grads.dv, dv);
    expectClose(values.sum, expectedValueSum, 1e-6 * values.magnitude, 1e-4);
    const keys = await sums(grads.dk, dk);
    expectClose(keys.sum, new Float64Array(dk), 1e-6 * keys.magnitude, 0);
    expect(keys.magnitude).toBeGreaterThan(0);
  });

  it('decodes one token against 32768 cached keys (V1, GQA 2, fused norm)', async () => {
    const { q, k, v, lambda, mask, norm, shapes, expected } = diffDecode();
    const y = ops.diffAttention(
      upload(q, shapes.q),
      upload(k, shapes.k),
      upload(v, shapes.v),
      upload(lambda, shapes.lambda),
      { ...mask, norm },
    );
    expectClose((await y.data()) as Float32Array, expected, 1e-4, 1e-3);
  });

  it('standard attention decodes one token against 32768 cached keys', async () => {
    const { q, k, v, mask, shapes, expected } = standardDecode();
    const y = ops.attention(upload(q, shapes.q), upload(k, shapes.k), upload(v, shapes.v), mask);
    expectClose((await y.data()) as Float32Array, expected, 1e-5, 1e-4);
  });
});
