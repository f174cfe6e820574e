/**
 * reference.attentionMaps: each layer's maps against hand-worked values, and against the fused reference
 * kernels (diffAttention, attention), which compute the same outputs without ever storing a map.
 */
import { type HostTensor, initParameters, type ModelConfig, resolveConfig } from '@diff-transformer/core';
import { describe, expect, it } from 'vitest';
import * as reference from '../src/index.js';

type RefTensor = reference.RefTensor;
const { refTensor } = reference;

const IDS = [
  [3, 17, 9, 30, 1, 22, 5],
  [8, 8, 2, 31, 14, 0, 27],
];

function model(attention: ModelConfig['attention'], numKvHeads: number) {
  const config = resolveConfig({ vocabSize: 32, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads, attention });
  return { config, parameters: initParameters(config, { seed: 7, std: 0.3, perturbNorms: 0.1 }) };
}

/** The input of layer 0's attention and its q, k, v, rotated as the reference model rotates them. */
function layerZeroProjections(config: ModelConfig, parameters: ReadonlyMap<string, HostTensor>) {
  const p = (name: string) => refTensor(parameters.get(name)!.data, parameters.get(name)!.shape);
  const [batch, tokens] = [IDS.length, IDS[0].length];
  const h = reference.embedding(p('embed_tokens.weight'), refTensor(IDS.flat(), [batch, tokens]));
  const x = reference.rmsNorm(h, p('layers.0.attn_norm.weight'), { eps: config.normEps });
  const { cos, sin } = reference.rotaryTables(config.headDim, config.rope.theta, tokens);
  const rotate = (t: RefTensor) => reference.rotary(t, cos, sin, { layout: config.rope.layout, positionOffset: 0 });
  const project = (name: string, heads: number, width: number) =>
    refTensor(reference.linear(x, p(`layers.0.attn.${name}.weight`)).data, [batch, tokens, heads, width]);
  return { x, p, rotate, project, batch, tokens };
}

/** Σ_s map[b, t, s]·v[b, s, group, :]: what a map does to the values. */
function applyMap(map: RefTensor, v: RefTensor, group: number): RefTensor {
  const [batch, tokens, keys] = map.shape;
  const [, , groups, width] = v.shape;
  const out = reference.refZeros([batch, tokens, width]);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < tokens; t++) {
      for (let s = 0; s < keys; s++) {
        const w = map.data[(b * tokens + t) * keys + s];
        for (let j = 0; j < width; j++)
          out.data[(b * tokens + t) * width + j] += w * v.data[((b * keys + s) * groups + group) * width + j];
      }
    }
  }
  return out;
}

/** Head `head` of an attention output [B, T, H, w], as [B, T, w]. */
function headOf(out: RefTensor, head: number): number[] {
  const [batch, tokens, heads, width] = out.shape;
  const values: number[] = [];
  for (let row = 0; row < batch * tokens; row++)
    values.push(...out.data.subarray((row * heads + head) * width, (row * heads + head + 1) * width));
  return values;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 1e-12) {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst).toBeLessThanOrEqual(tolerance);
}

function expectCausalDistributions(map: RefTensor) {
  const [batch, tokens, keys] = map.shape;
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < tokens; t++) {
      const row = map.data.subarray((b * tokens + t) * keys, (b * tokens + t + 1) * keys);
      expect(row.slice(t + 1).every((w) => w === 0)).toBe(true);
      expect(row.reduce((sum, w) => sum + w, 0)).toBeCloseTo(1, 12);
    }
  }
}

describe('reference.attentionMaps', () => {
  it('with q = 0 every map is uniform over the keys a query sees, and the differential map is (1 − λ)/(t + 1)', () => {
    const { config, parameters } = model('differential', 4);
    const zeroed = new Map(parameters);
    for (let layer = 0; layer < config.numLayers; layer++) {
      const name = `layers.${layer}.attn.q_proj.weight`;
      zeroed.set(name, {
        shape: parameters.get(name)!.shape,
        data: new Float32Array(parameters.get(name)!.data.length),
      });
    }
    const { layers } = reference.attentionMaps(config, zeroed, IDS);
    expect(layers.map((l) => l.layer)).toEqual([0, 1]);
    for (const layer of layers) {
      const lambda = reference.referenceLambda(zeroed, layer.layer);
      expect(layer.lambda).toBe(lambda);
      expect(layer.lambdaInit).toBe(reference.referenceLambdaInit(layer.layer));
      expect(layer.heads).toHaveLength(config.numHeads);
      for (const head of layer.heads) {
        if (head.kind !== 'differential') throw new Error(`expected a differential head, got ${head.kind}`);
        expect(head.map1.shape).toEqual([2, 7, 7]);
        const uniform = Array.from({ length: 2 * 49 }, (_, i) => {
          const [t, s] = [Math.floor(i / 7) % 7, i % 7];
          return s <= t ? 1 / (t + 1) : 0;
        });
        expectClose(head.map1.data, uniform);
        expectClose(head.map2.data, uniform);
        expectClose(
          head.differential.data,
          uniform.map((w) => (1 - lambda) * w),
        );
        expectClose(head.lambda.data, new Array(14).fill(lambda), 0);
      }
    }
  });

  it('observing the maps leaves the logits as modelLogits computes them', () => {
    for (const attention of ['differential', 'differential-v2', 'standard'] as const) {
      const { config, parameters } = model(attention, 2);
      const { logits } = reference.attentionMaps(config, parameters, IDS);
      expect(logits.data).toEqual(reference.modelLogits(config, parameters, IDS).data);
    }
  });

  it('DIFF V1 with GQA: the differential map times V is the fused diffAttention, head by head', () => {
    const { config, parameters } = model('differential', 2);
    const { layers } = reference.attentionMaps(config, parameters, IDS);
    const { rotate, project, tokens } = layerZeroProjections(config, parameters);
    const { numHeads: heads, numKvHeads: kvHeads, headDim: d } = config;
    const q = rotate(project('q_proj', 2 * heads, d));
    const k = rotate(project('k_proj', 2 * kvHeads, d));
    const v = project('v_proj', kvHeads, 2 * d);
    const lambda = reference.referenceLambda(parameters, 0);
    const fused = reference.diffAttention(q, k, v, refTensor(new Array(heads).fill(lambda), [heads]), null, {
      causal: true,
      keyOffset: 0,
      keyLength: tokens,
      scale: d ** -0.5,
      norm: null,
    });
    layers[0].heads.forEach((head, h) => {
      if (head.kind !== 'differential') throw new Error(head.kind);
      expectCausalDistributions(head.map1);
      expectCausalDistributions(head.map2);
      expectClose(applyMap(head.differential, v, reference.kvGroup(h, heads, kvHeads)).data, headOf(fused, h));
    });
    // Heads differ, so a mix-up of heads or groups would show above.
    const [first, second] = layers[0].heads;
    if (first.kind !== 'differential' || second.kind !== 'differential') throw new Error('differential heads');
    expect(first.map1.data).not.toEqual(second.map1.data);
  });

  it('DIFF V2: λ per token and head, shared keys, against the fused diffAttention', () => {
    const { config, parameters } = model('differential-v2', 2);
    const { layers } = reference.attentionMaps(config, parameters, IDS);
    const { x, p, rotate, project, batch, tokens } = layerZeroProjections(config, parameters);
    const { numHeads: heads, numKvHeads: kvHeads, headDim: d } = config;
    const q = rotate(project('q_proj', 2 * heads, d));
    const k = rotate(project('k_proj', kvHeads, d));
    const v = project('v_proj', kvHeads, d);
    const lambda = reference.sigmoid(reference.linear(x, p('layers.0.attn.lambda_proj.weight')));
    const fused = reference.diffAttention(q, k, v, refTensor(lambda.data, [batch, tokens, heads]), null, {
      causal: true,
      keyOffset: 0,
      keyLength: tokens,
      scale: d ** -0.5,
      norm: null,
    });
    expect(layers[0].lambda).toBeNull();
    expect(layers[0].lambdaInit).toBeNull();
    layers[0].heads.forEach((head, h) => {
      if (head.kind !== 'differential') throw new Error(head.kind);
      expectClose(
        head.lambda.data,
        Array.from({ length: batch * tokens }, (_, row) => lambda.data[row * heads + h]),
        0,
      );
      expectClose(applyMap(head.differential, v, reference.kvGroup(h, heads, kvHeads)).data, headOf(fused, h));
    });
  });

  it('baseline: one softmax map per head, against the fused attention', () => {
    const { config, parameters } = model('standard', 2);
    const { layers } = reference.attentionMaps(config, parameters, IDS);
    const { rotate, project, tokens } = layerZeroProjections(config, parameters);
    const { numHeads: heads, numKvHeads: kvHeads, headDim: d } = config;
    const q = rotate(project('q_proj', heads, d));
    const k = rotate(project('k_proj', kvHeads, d));
    const v = project('v_proj', kvHeads, d);
    const fused = reference.attention(q, k, v, { causal: true, keyOffset: 0, keyLength: tokens, scale: d ** -0.5 });
    expect(layers[0].attention).toBe('standard');
    layers[0].heads.forEach((head, h) => {
      if (head.kind !== 'softmax') throw new Error(head.kind);
      expectCausalDistributions(head.map);
      expectClose(applyMap(head.map, v, reference.kvGroup(h, heads, kvHeads)).data, headOf(fused, h));
    });
  });

  for (const attention of ['differential', 'differential-v2', 'standard'] as const) {
    it(`${attention}: attention logits are the maps before the softmax, hidden states the layer outputs`, () => {
      const { config, parameters } = model(attention, 2);
      const observed: reference.AttentionObservation[] = [];
      const hidden: RefTensor[] = [];
      const logits = reference.modelLogits(config, parameters, IDS, {
        onAttention: (o) => observed.push(o),
        onHiddenState: (depth, h) => {
          expect(depth).toBe(hidden.length);
          hidden.push(h);
        },
      });
      expect(observed.map((o) => o.logits.length)).toEqual(observed.map((o) => o.maps.length));
      for (const { maps, logits: scores } of observed) {
        maps.forEach((map, m) => {
          const [, , tokens, keys] = map.shape;
          expect(scores[m].shape).toEqual(map.shape);
          for (let row = 0; row < map.data.length / keys; row++) {
            const t = row % tokens;
            const z = Array.from(scores[m].data.subarray(row * keys, (row + 1) * keys));
            // Hidden keys (s > t) are −∞, so the softmax gives them 0 as the map does.
            expect(z.slice(t + 1).every((x) => x === Number.NEGATIVE_INFINITY)).toBe(true);
            const max = Math.max(...z);
            const total = z.reduce((sum, x) => sum + Math.exp(x - max), 0);
            expectClose(
              z.map((x) => Math.exp(x - max) / total),
              map.data.subarray(row * keys, (row + 1) * keys),
            );
          }
        });
      }
      expect(hidden).toHaveLength(config.numLayers);
      // The last hidden state, normed and through the LM head, is the logits.
      const p = (name: string) => refTensor(parameters.get(name)!.data, parameters.get(name)!.shape);
      const last = reference.rmsNorm(hidden[config.numLayers - 1], p('norm.weight'), { eps: config.normEps });
      expectClose(reference.linear(last, p('lm_head.weight')).data, logits.data);
    });
  }
});
