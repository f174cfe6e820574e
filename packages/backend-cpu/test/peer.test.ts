/**
 * The onnxruntime-node peer benchmark (scripts/bench-vs-onnxruntime.mjs) compares like with like: its
 * ONNX graphs, built in code, compute what the backend's ops compute (checked here at small sizes on
 * the native engine), and onnxruntime-node, a devDependency installed without its install script,
 * loads its CPU binaries and runs every graph the benchmark times.
 */
import { createCpuBackend } from '@diff-transformer/backend-cpu';
import { ops, tensor } from '@diff-transformer/core';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BENCH_MODEL,
  attentionModel,
  benchModel,
  diffAttentionModel,
  matmulModel,
  weightValues,
} from '../scripts/peer/models.mjs';
import { expectClose, randomArray } from './helpers.js';

const backend = await createCpuBackend({ engine: 'native', threads: 1 });
afterAll(() => backend.dispose());

async function run(model: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

const only = (outputs: Record<string, ort.Tensor>) => Object.values(outputs)[0];

describe('the peer graphs', () => {
  it('matmul: A times the constant B', async () => {
    const [m, n, k] = [3, 5, 7];
    const a = randomArray(m * k, 1);
    const c = only(await run(matmulModel(m, n, k), { a: new ort.Tensor('float32', a, [m, k]) }));
    const ours = ops.matmul(tensor(a, [m, k], { backend }), tensor(weightValues([k, n], 1), [k, n], { backend }));
    expectClose(c.data as Float32Array, await ours.data(), 1e-6, 1e-5);
  });

  it('attention: causal softmax attention of 2H heads', async () => {
    const [t, heads, d] = [9, 2, 8];
    const [q, k, v] = [1, 2, 3].map((seed) => randomArray(t * heads * d, seed));
    const feeds = Object.fromEntries(
      Object.entries({ q, k, v }).map(([name, x]) => [name, new ort.Tensor('float32', x, [1, t, heads * d])]),
    );
    const y = only(await run(attentionModel(t, heads, d), feeds));
    const view = (x: Float32Array) => tensor(x, [1, t, heads, d], { backend });
    const ours = ops.attention(view(q), view(k), view(v));
    expectClose(y.data as Float32Array, await ours.data(), 1e-5, 1e-4);
  });

  it('diff-attention: both maps, A₁ − λ·A₂ and the per-head RMSNorm', async () => {
    const [t, heads, d] = [9, 2, 8];
    const q = randomArray(t * 2 * heads * d, 1);
    const k = randomArray(t * 2 * heads * d, 2);
    const v = randomArray(t * heads * 2 * d, 3);
    const feeds = {
      q: new ort.Tensor('float32', q, [1, t, 2 * heads * d]),
      k: new ort.Tensor('float32', k, [1, t, 2 * heads * d]),
      v: new ort.Tensor('float32', v, [1, t, heads * 2 * d]),
    };
    const y = only(await run(diffAttentionModel(t, heads, d), feeds));
    // The graph's λ (one per head) and norm weight are its layer-0 constants.
    const lambda = tensor(weightValues([heads, 1, 1], 100), [heads], { backend });
    const weight = tensor(weightValues([2 * d], 200), [2 * d], { backend });
    const ours = ops.diffAttention(
      tensor(q, [1, t, 2 * heads, d], { backend }),
      tensor(k, [1, t, 2 * heads, d], { backend }),
      tensor(v, [1, t, heads, 2 * d], { backend }),
      lambda,
      { norm: { weight, eps: 1e-5, outputScale: 1 } },
    );
    expectClose(y.data as Float32Array, await ours.data(), 1e-4, 1e-3);
  });

  it('the bench model: a forward pass and a decoding step against a KV cache', async () => {
    const { vocab, heads, headDim: d, layers } = BENCH_MODEL;
    const int64 = (values: number[]) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), [1, values.length]);
    const forward = await run(benchModel(4), { ids: int64([1, 2, 3, 4]), positions: int64([0, 1, 2, 3]) });
    expect(only(forward).dims).toEqual([1, 4, vocab]);
    const feeds: Record<string, ort.Tensor> = { ids: int64([5]), positions: int64([4]) };
    for (let layer = 0; layer < layers; layer++) {
      feeds[`past_key_${layer}`] = new ort.Tensor('float32', randomArray(2 * heads * 4 * d, layer), [
        1,
        2 * heads,
        4,
        d,
      ]);
      feeds[`past_value_${layer}`] = new ort.Tensor('float32', randomArray(4 * heads * 4 * d, layer), [
        1,
        2 * heads,
        4,
        2 * d,
      ]);
    }
    const step = await run(benchModel(1, 4), feeds);
    const shapes = Object.values(step).map((x) => x.dims);
    expect(shapes).toContainEqual([1, 1, vocab]);
    expect(shapes).toContainEqual([1, 2 * heads, 5, d]);
    expect(shapes).toContainEqual([1, 2 * heads, 5, 2 * d]);
    for (const x of Object.values(step)) expect((x.data as Float32Array).every(Number.isFinite)).toBe(true);
  });
});
