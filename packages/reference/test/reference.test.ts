/** The reference against values worked out by hand, and against itself in two formulations. */
import { type HostTensor, initParameters, lambdaInit, resolveConfig } from '@diff-transformer/core';
import { describe, expect, it } from 'vitest';
import * as reference from '../src/index.js';

const { refTensor } = reference;
const close = (actual: ArrayLike<number>, expected: number[], digits = 12) => {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => {
    expect(actual[i]).toBeCloseTo(e, digits);
  });
};
const mask = (keyLength: number, extra: Partial<{ causal: boolean; keyOffset: number; scale: number }> = {}) => ({
  causal: true,
  keyOffset: 0,
  keyLength,
  scale: 1,
  ...extra,
});

describe('reference kernels', () => {
  it('matmul: a 2×2 product, its transposed layouts and a shared weight', () => {
    const a = refTensor([1, 2, 3, 4], [2, 2]);
    const b = refTensor([5, 6, 7, 8], [2, 2]);
    close(reference.matmul(a, b, { transposeA: false, transposeB: false }).data, [19, 22, 43, 50]);
    // bᵀ = [[5, 7], [6, 8]]: a·bᵀ = [[17, 23], [39, 53]]
    close(reference.matmul(a, b, { transposeA: false, transposeB: true }).data, [17, 23, 39, 53]);
    // aᵀ = [[1, 3], [2, 4]]: aᵀ·b = [[26, 30], [38, 44]]
    close(reference.matmul(a, b, { transposeA: true, transposeB: false }).data, [26, 30, 38, 44]);
    const batched = reference.matmul(refTensor([1, 2, 3, 4, 1, 0, 0, 1], [2, 2, 2]), b, {
      transposeA: false,
      transposeB: false,
    });
    expect(batched.shape).toEqual([2, 2, 2]);
    close(batched.data, [19, 22, 43, 50, 5, 6, 7, 8]);
  });

  it('linear uses the [out, in] weight layout', () => {
    const y = reference.linear(refTensor([1, 2, 3], [1, 3]), refTensor([1, 0, 0, 0, 1, 1], [2, 3]));
    expect(y.shape).toEqual([1, 2]);
    close(y.data, [1, 5]);
  });

  it('embedding gathers rows', () => {
    const out = reference.embedding(refTensor([0, 1, 10, 11, 20, 21], [3, 2]), refTensor([2, 0, 2], [3]));
    expect(out.shape).toEqual([3, 2]);
    close(out.data, [20, 21, 0, 1, 20, 21]);
  });

  it('rmsNorm of [3, 4] is [3, 4] / √12.5, times the weight', () => {
    const rms = Math.sqrt(12.5);
    close(reference.rmsNorm(refTensor([3, 4], [1, 2]), null, { eps: 0 }).data, [3 / rms, 4 / rms]);
    close(reference.rmsNorm(refTensor([3, 4], [1, 2]), refTensor([2, 0.5], [2]), { eps: 0 }).data, [6 / rms, 2 / rms]);
    // eps sits inside the square root.
    close(reference.rmsNorm(refTensor([1], [1, 1]), null, { eps: 3 }).data, [0.5]);
  });

  it('rotary at position 0 is the identity, and a quarter turn maps (1, 0) to (0, 1)', () => {
    const x = refTensor([1, 2, 3, 4, 5, 6, 7, 8], [1, 1, 2, 4]);
    const { cos, sin } = reference.rotaryTables(4, 10000, 3);
    for (const layout of ['interleaved', 'half'] as const) {
      close(reference.rotary(x, cos, sin, { layout, positionOffset: 0 }).data, [1, 2, 3, 4, 5, 6, 7, 8]);
    }
    const quarter = { cos: refTensor([0, 1], [1, 2]), sin: refTensor([1, 0], [1, 2]) };
    // interleaved pairs (x0, x1), (x2, x3); only the first pair turns
    close(
      reference.rotary(refTensor([1, 0, 1, 0], [1, 1, 1, 4]), quarter.cos, quarter.sin, {
        layout: 'interleaved',
        positionOffset: 0,
      }).data,
      [0, 1, 1, 0],
    );
    // half pairs (x0, x2), (x1, x3)
    close(
      reference.rotary(refTensor([1, 1, 0, 0], [1, 1, 1, 4]), quarter.cos, quarter.sin, {
        layout: 'half',
        positionOffset: 0,
      }).data,
      [0, 1, 1, 0],
    );
    // r < d: the tables cover 2 of 4 dimensions, the rest is copied
    close(
      reference.rotary(refTensor([1, 0, 7, 9], [1, 1, 1, 4]), refTensor([0], [1, 1]), refTensor([1], [1, 1]), {
        layout: 'half',
        positionOffset: 0,
      }).data,
      [0, 1, 7, 9],
    );
  });

  it('rotary tables hold cos/sin(p·θ^(−2j/d)) and positionOffset picks the row', () => {
    const { cos, sin } = reference.rotaryTables(4, 100, 3);
    close(cos.data, [1, 1, Math.cos(1), Math.cos(0.1), Math.cos(2), Math.cos(0.2)]);
    close(sin.data, [0, 0, Math.sin(1), Math.sin(0.1), Math.sin(2), Math.sin(0.2)]);
    const shifted = reference.rotary(refTensor([1, 0, 0, 0], [1, 1, 1, 4]), cos, sin, {
      layout: 'interleaved',
      positionOffset: 2,
    });
    close(shifted.data, [Math.cos(2), Math.sin(2), 0, 0]);
  });

  it('sigmoid, swiglu and add', () => {
    close(reference.sigmoid(refTensor([0, Math.log(3)], [2])).data, [0.5, 0.75]);
    close(reference.swiglu(refTensor([0, Math.log(3)], [2]), refTensor([5, 2], [2])).data, [0, 2 * 0.75 * Math.log(3)]);
    close(reference.add(refTensor([1, 2], [2]), refTensor([10, 20], [2])).data, [11, 22]);
    expect(reference.sigmoid(refTensor([-1000], [1])).data[0]).toBe(0);
  });

  it('softmax of [1e4, 1e4] is [0.5, 0.5]; temperature divides the logits', () => {
    close(reference.softmax(refTensor([1e4, 1e4], [1, 2]), { temperature: 1 }).data, [0.5, 0.5]);
    close(reference.softmax(refTensor([0, Math.log(3)], [1, 2]), { temperature: 1 }).data, [0.25, 0.75]);
    close(reference.softmax(refTensor([0, 2 * Math.log(3)], [1, 2]), { temperature: 2 }).data, [0.25, 0.75]);
  });

  it('argmax sends ties to the lowest index', () => {
    close(reference.argmax(refTensor([1, 3, 3, 0, -1e4, -1e4], [2, 3])).data, [1, 0]);
  });

  it('narrow and cacheWrite copy the right rows', () => {
    const x = refTensor([0, 1, 2, 3, 4, 5], [2, 3]);
    close(reference.narrow(x, { axis: 1, start: 1, length: 2 }).data, [1, 2, 4, 5]);
    close(reference.narrow(x, { axis: 0, start: 1, length: 1 }).data, [3, 4, 5]);
    const cache = refTensor([0, 0, 0, 0, 0, 0, 0, 0], [2, 4, 1]);
    const written = reference.cacheWrite(cache, refTensor([1, 2], [2, 1, 1]), { position: 3 });
    close(written.data, [0, 0, 0, 1, 0, 0, 0, 2]);
    expect(cache.data.every((v) => v === 0)).toBe(true);
  });

  it('kvGroup is ⌊h·Hkv/H⌋', () => {
    expect([0, 1, 2, 3].map((h) => reference.kvGroup(h, 4, 2))).toEqual([0, 0, 1, 1]);
    expect([0, 1, 2, 3].map((h) => reference.kvGroup(h, 4, 1))).toEqual([0, 0, 0, 0]);
    expect([0, 1, 2, 3].map((h) => reference.kvGroup(h, 4, 4))).toEqual([0, 1, 2, 3]);
  });
});

describe('reference attention', () => {
  it('one key: the output is its value, whatever q and k', () => {
    const out = reference.attention(
      refTensor([3, -1], [1, 1, 1, 2]),
      refTensor([0.5, 9], [1, 1, 1, 2]),
      refTensor([7, 8, 9], [1, 1, 1, 3]),
      mask(1),
    );
    close(out.data, [7, 8, 9]);
  });

  it('causal: query 0 sees key 0 only; keyOffset lets a decode step see the cache', () => {
    const q = refTensor([1, 1], [1, 2, 1, 1]);
    const k = refTensor([0, 0, 0], [1, 3, 1, 1]);
    const v = refTensor([2, 4, 600], [1, 3, 1, 1]);
    close(reference.attention(q, k, v, mask(2)).data, [2, 3]);
    close(reference.attention(q, k, v, mask(2, { causal: false })).data, [3, 3]);
    // Key 2 lies past keyLength: never read.
    close(reference.attention(refTensor([1], [1, 1, 1, 1]), k, v, mask(2, { keyOffset: 1 })).data, [3]);
  });

  it('diffAttention with λ = 0 equals attention with map 1', () => {
    // q [1, 2, 2H = 2, 2]: half-head 0 is map 1; k per map [1, 2, 2, 2]; v [1, 2, 1, 2]
    const q = refTensor([1, 0, 5, 5, 0, 1, -5, 5], [1, 2, 2, 2]);
    const k = refTensor([1, 2, 7, 7, 2, 1, -7, 7], [1, 2, 2, 2]);
    const v = refTensor([1, 2, 3, 4], [1, 2, 1, 2]);
    const lambda = refTensor([0], [1]);
    const out = reference.diffAttention(q, k, v, lambda, null, { ...mask(2), norm: null });
    const map1 = reference.attention(
      refTensor([1, 0, 0, 1], [1, 2, 1, 2]),
      refTensor([1, 2, 2, 1], [1, 2, 1, 2]),
      v,
      mask(2),
    );
    close(out.data, Array.from(map1.data));
  });

  it('diffAttention equals (map 1 − λ·map 2) through RMSNorm·weight·outputScale, for both key layouts', () => {
    const q = refTensor([0.3, -1.2, 0.7, 0.1, -0.4, 0.9, 1.1, -0.6], [1, 2, 2, 2]);
    const k2 = refTensor([0.5, 0.2, -0.3, 0.8, 1.0, -0.7, 0.4, 0.6], [1, 2, 2, 2]);
    const v = refTensor([1, -2, 0.5, 3], [1, 2, 1, 2]);
    const pick = (t: typeof q, head: number, heads: number) =>
      refTensor(
        [0, 1].flatMap((s) => Array.from(t.data.subarray((s * heads + head) * 2, (s * heads + head) * 2 + 2))),
        [1, 2, 1, 2],
      );
    const weight = refTensor([1.5, 0.5], [2]);
    const norm = { eps: 1e-5, outputScale: 0.8 };
    const lambda = 0.6;
    const expected = (k1: ReturnType<typeof pick>, k2m: ReturnType<typeof pick>) => {
      const a1 = reference.attention(pick(q, 0, 2), k1, v, mask(2));
      const a2 = reference.attention(pick(q, 1, 2), k2m, v, mask(2));
      const difference = refTensor(
        a1.data.map((x, i) => x - lambda * a2.data[i]),
        [1, 2, 1, 2],
      );
      return Array.from(reference.rmsNorm(difference, weight, { eps: norm.eps }).data, (x) => x * norm.outputScale);
    };
    const perMap = reference.diffAttention(q, k2, v, refTensor([lambda], [1]), weight, { ...mask(2), norm });
    close(perMap.data, expected(pick(k2, 0, 2), pick(k2, 1, 2)));
    const shared = refTensor([0.5, 0.2, 1.0, -0.7], [1, 2, 1, 2]);
    const perToken = refTensor([lambda, lambda], [1, 2, 1]);
    close(reference.diffAttention(q, shared, v, perToken, weight, { ...mask(2), norm }).data, expected(shared, shared));
  });
});

describe('reference model', () => {
  const config = resolveConfig({ vocabSize: 11, hiddenSize: 16, numLayers: 3, numHeads: 2, numKvHeads: 1 });
  const parameters = initParameters(config, { seed: 3, std: 0.1, perturbNorms: 0.1 });

  it('λinit is the official 0.8 − 0.6·exp(−0.3·depth) and matches core', () => {
    expect(reference.referenceLambdaInit(0)).toBeCloseTo(0.2, 15);
    for (const depth of [0, 1, 5, 23]) expect(reference.referenceLambdaInit(depth)).toBeCloseTo(lambdaInit(depth), 15);
  });

  it('logits are [B, T, V], causal, and batch rows are independent', () => {
    const ids = [3, 1, 4, 1, 5];
    const full = reference.modelLogits(config, parameters, [ids, [9, 2, 6, 5, 3]]);
    expect(full.shape).toEqual([2, 5, 11]);
    const prefix = reference.modelLogits(config, parameters, [ids.slice(0, 3)]);
    close(prefix.data, Array.from(full.data.subarray(0, 3 * 11)));
    const alone = reference.modelLogits(config, parameters, [ids]);
    close(alone.data, Array.from(full.data.subarray(0, 5 * 11)));
  });

  it('applies λinit(depth) = 0.8 − 0.6·exp(−0.3·depth) per layer, in λ and in the (1 − λinit) scale', () => {
    // The same two DIFF layers, one layer deeper behind a layer that adds nothing (out_proj and down_proj
    // zero): each λinit becomes λinit(depth + 1). Undoing exactly that change (exp(λq1·λk1) lowered by
    // the rise of λinit, so λ stays; the subln weight times (1 − λinit(d)) / (1 − λinit(d + 1))) must give
    // the logits back. A λinit that ignored depth, was off by a layer, or entered only λ or only the scale
    // would not: the shifted model without the correction differs, the corrected one matches.
    const official = (depth: number) => 0.8 - 0.6 * Math.exp(-0.3 * depth);
    const two = resolveConfig({ vocabSize: 11, hiddenSize: 16, numLayers: 2, numHeads: 2, numKvHeads: 1 });
    const three = resolveConfig({ vocabSize: 11, hiddenSize: 16, numLayers: 3, numHeads: 2, numKvHeads: 1 });
    const original = initParameters(two, { seed: 5, std: 0.1, perturbNorms: 0.1 });
    const ids = [[1, 4, 2, 8, 5]];
    const shifted = (corrected: boolean) => {
      const out = new Map<string, HostTensor>();
      for (const [name, p] of original) {
        const layer = /^layers\.(\d+)\.(.*)$/.exec(name);
        if (!layer) {
          out.set(name, p);
          continue;
        }
        const depth = Number(layer[1]);
        out.set(`layers.${depth + 1}.${layer[2]}`, p);
        // Layer 0 of the deeper model: the same weights, adding nothing to the residual stream.
        const silent = /out_proj|down_proj/.test(name) ? { shape: p.shape, data: new Float32Array(p.data.length) } : p;
        if (depth === 0) out.set(`layers.0.${layer[2]}`, silent);
      }
      if (!corrected) return out;
      for (const depth of [0, 1]) {
        const at = (name: string) => out.get(`layers.${depth + 1}.attn.${name}`)!;
        const [q1, k1] = [Float64Array.from(at('lambda_q1').data), Float64Array.from(at('lambda_k1').data)];
        const dot = q1.reduce((sum, x, i) => sum + x * k1[i], 0);
        const target = Math.log(Math.exp(dot) - (official(depth + 1) - official(depth)));
        const k1Squared = k1.reduce((sum, x) => sum + x * x, 0);
        // λq1 moved along λk1, so that λq1·λk1 = target (and λ = its value at the original depth).
        const moved = q1.map((x, i) => x + ((target - dot) * k1[i]) / k1Squared);
        out.set(`layers.${depth + 1}.attn.lambda_q1`, { shape: at('lambda_q1').shape, data: Float32Array.from(moved) });
        const ratio = (1 - official(depth)) / (1 - official(depth + 1));
        const subln = at('subln.weight');
        out.set(`layers.${depth + 1}.attn.subln.weight`, {
          shape: subln.shape,
          data: Float32Array.from(subln.data, (w) => w * ratio),
        });
      }
      return out;
    };
    const expected = reference.modelLogits(two, original, ids).data;
    const uncorrected = reference.modelLogits(three, shifted(false), ids).data;
    const corrected = reference.modelLogits(three, shifted(true), ids).data;
    const worst = (logits: Float64Array) => Math.max(...logits.map((x, i) => Math.abs(x - expected[i])));
    expect(worst(uncorrected)).toBeGreaterThan(1e-3);
    // The corrected parameters are stored in float32: their rounding is all that remains.
    expect(worst(corrected)).toBeLessThan(1e-6);
  });

  it('every variant runs, and the subln weight matters', () => {
    for (const attention of ['differential', 'differential-v2', 'standard'] as const) {
      const c = resolveConfig({
        vocabSize: 11,
        hiddenSize: 16,
        numLayers: 2,
        numHeads: 2,
        attention,
        tieWordEmbeddings: true,
      });
      const logits = reference.modelLogits(c, initParameters(c, { seed: 1 }), [[1, 2, 3]]);
      expect(logits.shape).toEqual([1, 3, 11]);
      expect(logits.data.every(Number.isFinite)).toBe(true);
    }
    const plain = reference.modelLogits(config, parameters, [[1, 2, 3]]);
    const scaled = new Map(parameters);
    const subln = parameters.get('layers.1.attn.subln.weight')!;
    scaled.set('layers.1.attn.subln.weight', { shape: subln.shape, data: subln.data.map((w) => 2 * w) });
    const changed = reference.modelLogits(config, scaled, [[1, 2, 3]]);
    expect(changed.data.some((x, i) => Math.abs(x - plain.data[i]) > 1e-6)).toBe(true);
  });

  it('greedy continuation appends the argmax of the last position and reports its margin', () => {
    const { ids, margins } = reference.greedyContinuation(config, parameters, [1, 2], 3);
    expect(ids).toHaveLength(3);
    const logits = reference.modelLogits(config, parameters, [[1, 2]]);
    const last = Array.from(logits.data.subarray(11));
    expect(ids[0]).toBe(last.indexOf(Math.max(...last)));
    expect(margins.every((m) => m >= 0)).toBe(true);
  });
});
