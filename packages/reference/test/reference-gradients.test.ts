/**
 * The reference's training kernels against central finite differences in float64: for a random probe
 * dy and L(x) = Σ dy ⊙ f(x), each analytic gradient must match (L(x + h·eᵢ) − L(x − h·eᵢ)) / 2h for every
 * element. With h = 1e-5 the difference quotient is good to ~1e-10, so the bound below is tight: a
 * missing term, a wrong sign or a mask off by one shows by orders of magnitude.
 */
import type { AttentionMaskAttrs, DiffAttentionAttrs, ModelConfigInput } from '@diff-transformer/core';
import { createRandom, initParameters, resolveConfig } from '@diff-transformer/core';
import { describe, expect, it } from 'vitest';
import * as reference from '../src/index.js';
import type { RefTensor } from '../src/tensor.js';

const { refTensor } = reference;
const random = createRandom(20251130);
const normal = (n: number, std = 1) => Array.from({ length: n }, () => std * random.normal());
const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const randomTensor = (shape: number[], std = 1) => refTensor(normal(size(shape), std), shape);

/** Equal up to float64 round-off (the two formulations sum in different orders). */
const expectClose = (actual: ArrayLike<number>, expected: ArrayLike<number>) => {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i])).toBeLessThan(1e-13);
};

const probe = reference.projection;

/**
 * Checks `analytic` against the finite-difference gradient of `loss` with respect to `x` (perturbed in
 * place and restored), element by element: |a − n| ≤ 1e-7 · (1 + max |n|).
 */
function expectGradient(x: RefTensor, loss: () => number, analytic: RefTensor, h = 1e-5): void {
  expect(analytic.shape).toEqual(x.shape);
  const numeric = reference.centralDifferences(x, loss, h).data;
  const scale = 1 + Math.max(...numeric.map(Math.abs));
  let worst = 0;
  for (let i = 0; i < numeric.length; i++) worst = Math.max(worst, Math.abs(numeric[i] - analytic.data[i]));
  expect(worst / scale).toBeLessThan(1e-7);
  // The probe reached this input at all: a gradient of zeros would pass the bound for a dead input.
  expect(Math.max(...numeric.map(Math.abs))).toBeGreaterThan(1e-6);
}

describe('reference gradients against finite differences', () => {
  it('mulBackward, expBackward, sigmoidBackward, scaleBackward', () => {
    const [a, b, dy] = [randomTensor([3, 5]), randomTensor([3, 5]), randomTensor([3, 5])];
    const g = reference.mulBackward(a, b, dy);
    expectGradient(a, () => probe(reference.mul(a, b), dy), g.dA);
    expectGradient(b, () => probe(reference.mul(a, b), dy), g.dB);
    expectGradient(a, () => probe(reference.exp(a), dy), reference.expBackward(a, dy));
    expectGradient(a, () => probe(reference.sigmoid(a), dy), reference.sigmoidBackward(a, dy));
    const attrs = { alpha: -0.7, beta: 0.8 };
    expectGradient(a, () => probe(reference.scale(a, attrs), dy), reference.scaleBackward(dy, attrs));
  });

  const layouts = [
    { a: [4, 3], b: [3, 5], transposeA: false, transposeB: false },
    { a: [3, 4], b: [3, 5], transposeA: true, transposeB: false },
    { a: [4, 3], b: [5, 3], transposeA: false, transposeB: true },
    { a: [3, 4], b: [5, 3], transposeA: true, transposeB: true },
    { a: [2, 4, 3], b: [2, 3, 5], transposeA: false, transposeB: false },
    { a: [2, 4, 3], b: [5, 3], transposeA: false, transposeB: true },
  ];
  for (const { a: aShape, b: bShape, ...attrs } of layouts) {
    it(`matmulBackward a [${aShape}] b [${bShape}] ${JSON.stringify(attrs)}`, () => {
      const [a, b] = [randomTensor(aShape), randomTensor(bShape)];
      const dy = randomTensor([...reference.matmul(a, b, attrs).shape]);
      const g = reference.matmulBackward(a, b, dy, attrs);
      const loss = () => probe(reference.matmul(a, b, attrs), dy);
      expectGradient(a, loss, g.dA);
      expectGradient(b, loss, g.dB);
    });
  }

  it('narrowBackward puts dy back at its rows and zeros elsewhere', () => {
    const x = randomTensor([3, 5, 2]);
    const attrs = { axis: 1, start: 2, length: 2 };
    const dy = randomTensor([3, 2, 2]);
    expectGradient(x, () => probe(reference.narrow(x, attrs), dy), reference.narrowBackward(dy, x.shape, attrs));
  });

  it('swigluBackward', () => {
    const [gate, up, dy] = [randomTensor([3, 5], 2), randomTensor([3, 5]), randomTensor([3, 5])];
    const g = reference.swigluBackward(gate, up, dy);
    const loss = () => probe(reference.swiglu(gate, up), dy);
    expectGradient(gate, loss, g.dGate);
    expectGradient(up, loss, g.dUp);
  });

  for (const withWeight of [true, false]) {
    it(`rmsNormBackward ${withWeight ? 'with' : 'without'} weight, eps 0.1`, () => {
      const [x, dy] = [randomTensor([4, 6]), randomTensor([4, 6])];
      const weight = withWeight ? randomTensor([6]) : null;
      const attrs = { eps: 0.1 };
      const g = reference.rmsNormBackward(x, weight, dy, attrs);
      const loss = () => probe(reference.rmsNorm(x, weight, attrs), dy);
      expectGradient(x, loss, g.dx);
      if (weight) expectGradient(weight, loss, g.dWeight!);
      else expect(g.dWeight).toBeNull();
    });
  }

  it('embeddingBackward sums repeated ids and leaves unused rows at zero', () => {
    const table = randomTensor([5, 3]);
    const ids = refTensor([1, 3, 1, 4, 1, 0], [2, 3]);
    const dy = randomTensor([2, 3, 3]);
    const g = reference.embeddingBackward(ids, dy, 5);
    expectGradient(table, () => probe(reference.embedding(table, ids), dy), g);
    expect(Array.from(g.data.subarray(6, 9))).toEqual([0, 0, 0]); // id 2 never occurs
  });

  it('crossEntropy: dLogits is the gradient of the loss, ignored rows count nothing', () => {
    const logits = randomTensor([4, 7], 3);
    const targets = refTensor([2, -100, 6, 0], [4]);
    const attrs = { ignoreIndex: -100, scale: 1 / 3 };
    const { loss, dLogits } = reference.crossEntropy(logits, targets, attrs);
    expectGradient(logits, () => reference.crossEntropy(logits, targets, attrs).loss.data[0], dLogits);
    expect(Array.from(dLogits.data.subarray(7, 14))).toEqual(new Array(7).fill(0));
    // The loss of a row by hand: logsumexp − the target's logit.
    const row0 = Array.from(logits.data.subarray(0, 7));
    const lse = Math.log(row0.reduce((s, v) => s + Math.exp(v), 0));
    expect(loss.data[0]).toBeGreaterThan((lse - row0[2]) / 3 - 1e-12);
  });

  const masks: Array<{ label: string; tokens: number; keys: number; mask: AttentionMaskAttrs }> = [
    { label: 'causal T5', tokens: 5, keys: 5, mask: { causal: true, keyOffset: 0, keyLength: 5, scale: 0.4 } },
    {
      label: 'causal chunk T3 keyOffset 2 keyLength 5 of 7',
      tokens: 3,
      keys: 7,
      mask: { causal: true, keyOffset: 2, keyLength: 5, scale: 0.5 },
    },
    { label: 'non-causal T3 S6', tokens: 3, keys: 6, mask: { causal: false, keyOffset: 0, keyLength: 6, scale: 0.3 } },
  ];

  for (const { label, tokens, keys, mask } of masks) {
    it(`attentionBackward, GQA 2, ${label}`, () => {
      const [heads, kvHeads, dk, dv] = [4, 2, 3, 2];
      const q = randomTensor([2, tokens, heads, dk]);
      const k = randomTensor([2, keys, kvHeads, dk]);
      const v = randomTensor([2, keys, kvHeads, dv]);
      const dy = randomTensor([2, tokens, heads, dv]);
      const g = reference.attentionBackward(q, k, v, dy, mask);
      const loss = () => probe(reference.attention(q, k, v, mask), dy);
      expectGradient(q, loss, g.dq);
      expectGradient(k, loss, g.dk);
      expectGradient(v, loss, g.dv);
      // Keys past keyLength are never read: their gradient is exactly zero.
      for (let s = mask.keyLength; s < keys; s++) {
        for (let i = 0; i < kvHeads * dk; i++) expect(g.dk.data[s * kvHeads * dk + i]).toBe(0);
      }
    });

    it(`attentionWithStatistics: the output of attention and each row's log-sum-exp, ${label}`, () => {
      const q = randomTensor([1, tokens, 2, 3]);
      const k = randomTensor([1, keys, 1, 3]);
      const v = randomTensor([1, keys, 1, 4]);
      const { output, logSumExp } = reference.attentionWithStatistics(q, k, v, mask);
      expectClose(output.data, reference.attention(q, k, v, mask).data);
      // Row t of head h by hand.
      const [t, h] = [tokens - 1, 1];
      const visible = mask.causal ? Math.min(mask.keyLength, mask.keyOffset + t + 1) : mask.keyLength;
      let total = 0;
      for (let s = 0; s < visible; s++) {
        let dot = 0;
        for (let j = 0; j < 3; j++) dot += q.data[(t * 2 + h) * 3 + j] * k.data[s * 3 + j];
        total += Math.exp(mask.scale * dot);
      }
      expect(logSumExp.data[t * 2 + h]).toBeCloseTo(Math.log(total), 12);
    });
  }

  const variants: Array<{
    label: string;
    keyHeads: 'per-map' | 'shared';
    perToken: boolean;
    norm: boolean;
    weight: boolean;
  }> = [
    {
      label: 'V1 per-map keys, λ per head, norm with weight',
      keyHeads: 'per-map',
      perToken: false,
      norm: true,
      weight: true,
    },
    { label: 'V1 norm without weight', keyHeads: 'per-map', perToken: false, norm: true, weight: false },
    { label: 'V1 without norm', keyHeads: 'per-map', perToken: false, norm: false, weight: false },
    { label: 'V2 shared keys, λ per token', keyHeads: 'shared', perToken: true, norm: false, weight: false },
    { label: 'shared keys, λ per head, norm', keyHeads: 'shared', perToken: false, norm: true, weight: true },
  ];
  for (const variant of variants) {
    for (const { label, tokens, keys, mask } of masks.slice(0, 2)) {
      it(`diffAttentionBackward, ${variant.label}, GQA 2, ${label}`, () => {
        const [heads, kvHeads, dk, dv] = [4, 2, 3, 4];
        const keyHeads = variant.keyHeads === 'per-map' ? 2 * kvHeads : kvHeads;
        const q = randomTensor([2, tokens, 2 * heads, dk]);
        const k = randomTensor([2, keys, keyHeads, dk]);
        const v = randomTensor([2, keys, kvHeads, dv]);
        // λ on both sides of 0 and above 1, as the re-parameterisation allows.
        const lambda = variant.perToken
          ? refTensor(normal(2 * tokens * heads), [2, tokens, heads])
          : refTensor([-0.7, 0.3, 1.4, 0.8], [heads]);
        const weight = variant.weight ? randomTensor([dv], 0.5) : null;
        if (weight) for (let i = 0; i < dv; i++) weight.data[i] += 1;
        const attrs: DiffAttentionAttrs = { ...mask, norm: variant.norm ? { eps: 0.05, outputScale: 0.7 } : null };
        const dy = randomTensor([2, tokens, heads, dv]);
        const g = reference.diffAttentionBackward(q, k, v, lambda, weight, dy, attrs);
        const loss = () => probe(reference.diffAttention(q, k, v, lambda, weight, attrs), dy);
        expectGradient(q, loss, g.dq);
        expectGradient(k, loss, g.dk);
        expectGradient(v, loss, g.dv);
        expectGradient(lambda, loss, g.dLambda);
        if (weight) expectGradient(weight, loss, g.dNormWeight!);
        else expect(g.dNormWeight).toBeNull();
      });
    }
  }

  it('diffAttentionWithStatistics: the output of diffAttention, each map’s log-sum-exp and output', () => {
    const q = randomTensor([1, 4, 4, 3]);
    const k = randomTensor([1, 4, 2, 3]);
    const v = randomTensor([1, 4, 1, 2]);
    const lambda = refTensor([0.4, -0.2], [2]);
    const attrs: DiffAttentionAttrs = { causal: true, keyOffset: 0, keyLength: 4, scale: 0.5, norm: null };
    const r = reference.diffAttentionWithStatistics(q, k, v, lambda, null, attrs);
    expectClose(r.output.data, reference.diffAttention(q, k, v, lambda, null, attrs).data);
    // Each map on its own is a standard attention over its half-heads and its keys.
    for (const m of [0, 1]) {
      const pick = (x: RefTensor, heads: number, width: number, select: (i: number) => number) => {
        const [, t] = x.shape;
        const out = reference.refZeros([1, t, heads, width]);
        for (let row = 0; row < t; row++) {
          for (let i = 0; i < heads; i++) {
            const from = (row * x.shape[2] + select(i)) * width;
            out.data.set(x.data.subarray(from, from + width), (row * heads + i) * width);
          }
        }
        return out;
      };
      const single = reference.attentionWithStatistics(
        pick(q, 2, 3, (i) => 2 * i + m),
        pick(k, 1, 3, () => m),
        v,
        attrs,
      );
      for (let i = 0; i < 4 * 2; i++) {
        expect(r.logSumExp.data[i * 2 + m]).toBeCloseTo(single.logSumExp.data[i], 12);
        for (let c = 0; c < 2; c++)
          expect(r.mapOutputs.data[(i * 2 + m) * 2 + c]).toBeCloseTo(single.output.data[i * 2 + c], 12);
      }
    }
  });

  it('exp, mul, scale and sumSquares by their definitions', () => {
    const x = refTensor([0, 1, -2], [3]);
    expect(Array.from(reference.exp(x).data)).toEqual([1, Math.E, Math.exp(-2)]);
    expect(Array.from(reference.mul(x, refTensor([3, 4, 5], [3])).data)).toEqual([0, 4, -10]);
    expect(Array.from(reference.scale(x, { alpha: -2, beta: 0.5 }).data)).toEqual([0.5, -1.5, 4.5]);
    expect(Array.from(reference.sumSquares(x).data)).toEqual([5]);
  });

  it('adamw: one step worked out by hand (torch.optim.AdamW)', () => {
    const attrs = { learningRate: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.01, step: 1, gradScale: 0.5 };
    const r = reference.adamw(
      refTensor([2], [1]),
      refTensor([4], [1]),
      refTensor([0], [1]),
      refTensor([0], [1]),
      attrs,
    );
    // g = 2; m = 0.2; v = 0.04; m̂ = 2, v̂ = 4; p = 2·(1 − 0.001) − 0.1·2/(2 + 1e-8)
    expect(r.m.data[0]).toBeCloseTo(0.2, 15);
    expect(r.v.data[0]).toBeCloseTo(0.04, 15);
    expect(r.param.data[0]).toBeCloseTo(2 * 0.999 - (0.1 * 2) / (2 + 1e-8), 14);
  });

  for (const layout of ['interleaved', 'half'] as const) {
    it(`rotaryBackward (${layout}, partial tables, position offset)`, () => {
      const x = randomTensor([2, 3, 2, 6]);
      const tables = reference.rotaryTables(4, 10000, 8); // rotates 4 of the 6 dimensions
      const attrs = { layout, positionOffset: 2 };
      const dy = randomTensor([2, 3, 2, 6]);
      expectGradient(
        x,
        () => probe(reference.rotary(x, tables.cos, tables.sin, attrs), dy),
        reference.rotaryBackward(dy, tables.cos, tables.sin, attrs),
      );
    });
  }
});

/**
 * The reference model's loss gradient (explicit backpropagation through the fused reference kernels)
 * against finite differences of the loss of modelLogits, the official formulation (per-map attention,
 * repeat_kv, λ from its vectors): every parameter of four small models.
 */
describe('reference model gradients against finite differences of the official formulation', () => {
  const models: Array<{ label: string; config: ModelConfigInput }> = [
    {
      label: 'DIFF V1, GQA 2, untied, interleaved rotary, subln with weight',
      config: { vocabSize: 11, hiddenSize: 16, numLayers: 2, numHeads: 2, numKvHeads: 1, intermediateSize: 12 },
    },
    {
      label: 'DIFF V1, MHA, tied, half rotary, subln without weight',
      config: {
        vocabSize: 11,
        hiddenSize: 8,
        numLayers: 2,
        numHeads: 1,
        intermediateSize: 12,
        tieWordEmbeddings: true,
        rope: { layout: 'half' },
        subLayerNorm: { affine: false },
      },
    },
    {
      label: 'DIFF V1 without subln, λinit 0.8 (the ablation)',
      config: {
        vocabSize: 11,
        hiddenSize: 8,
        numLayers: 2,
        numHeads: 1,
        intermediateSize: 12,
        subLayerNorm: null,
        lambdaInit: 0.8,
      },
    },
    {
      label: 'DIFF V1 with a scalar λ, GQA 2 (the ablation)',
      config: {
        vocabSize: 11,
        hiddenSize: 16,
        numLayers: 2,
        numHeads: 2,
        numKvHeads: 1,
        intermediateSize: 12,
        lambdaParameterization: 'scalar',
      },
    },
    {
      label: 'DIFF V2, GQA 2',
      config: {
        vocabSize: 11,
        hiddenSize: 8,
        numLayers: 2,
        numHeads: 2,
        numKvHeads: 1,
        intermediateSize: 12,
        attention: 'differential-v2',
      },
    },
    {
      label: 'baseline, tied',
      config: {
        vocabSize: 11,
        hiddenSize: 8,
        numLayers: 2,
        numHeads: 2,
        intermediateSize: 12,
        attention: 'standard',
        tieWordEmbeddings: true,
      },
    },
  ];
  for (const { label, config: input } of models) {
    it(label, () => {
      const config = resolveConfig(input);
      // float64 values behind the HostTensor type, so that a perturbation of 1e-5 is not lost to rounding.
      const parameters = new Map(
        [...initParameters(config, { seed: 3, std: 0.3, perturbNorms: 0.2 })].map(([name, p]) => [
          name,
          { shape: p.shape, data: Float64Array.from(p.data) as unknown as Float32Array },
        ]),
      );
      const ids = [
        [1, 4, 9, 2, 7],
        [3, 3, 10, 0, 5],
      ];
      const targets = [
        [4, 9, 2, 7, -100],
        [3, 10, 0, 5, 6],
      ];
      const { loss, gradients } = reference.modelLossGradients(config, parameters, ids, targets);
      const officialLoss = () => {
        const logits = reference.modelLogits(config, parameters, ids);
        const flat = refTensor(logits.data, [10, config.vocabSize]);
        const attrs = { ignoreIndex: -100, scale: 1 / 9 };
        return reference.crossEntropy(flat, refTensor(targets.flat(), [10]), attrs).loss.data[0];
      };
      expect(loss).toBeCloseTo(officialLoss(), 12);
      expect([...gradients.keys()].sort()).toEqual([...parameters.keys()].sort());
      for (const [name, p] of parameters) {
        const x = { shape: p.shape, data: p.data as unknown as Float64Array };
        expectGradient(x, officialLoss, gradients.get(name)!);
      }
    });
  }
});
