import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  lambdaInit,
  layerLambdaInit,
  parameterCount,
  parameterShapes,
  resolveConfig,
  createRandom,
  sampleFromProbabilities,
  validateParameters,
  initParameters,
  ParameterError,
  ShapeError,
} from '../src/index.js';

describe('model config', () => {
  it('derives d = d_model / num_heads / 2 for differential attention, as the official code', () => {
    const c = resolveConfig({ vocabSize: 100, hiddenSize: 64, numLayers: 2, numHeads: 4 });
    expect(c.headDim).toBe(8);
    expect(c.numKvHeads).toBe(4);
    expect(c.rope).toEqual({ theta: 10000, layout: 'interleaved', precision: 'float64', scaling: { type: 'default' } });
    expect(c.attention).toBe('differential');
    const base = resolveConfig({ vocabSize: 100, hiddenSize: 64, numLayers: 2, numHeads: 8, attention: 'standard' });
    expect(base.headDim).toBe(8);
    // Matched size: DIFF with H heads has the parameters of a baseline with 2H heads (λ and subln aside).
    const diffQ = parameterShapes(c).get('layers.0.attn.q_proj.weight');
    expect(diffQ).toEqual(parameterShapes(base).get('layers.0.attn.q_proj.weight'));
  });

  it('names every invalid field at once', () => {
    let error: ConfigError | undefined;
    try {
      resolveConfig({ vocabSize: 0, hiddenSize: 60, numLayers: 2, numHeads: 4, numKvHeads: 3 });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.fields).toEqual(['vocabSize', 'numKvHeads', 'hiddenSize']);
    expect(error!.message).toContain('numHeads (4) must be a multiple of numKvHeads (3)');
    expect(error!.message).toContain('hiddenSize (60) must be divisible by 2·numHeads (8)');
  });

  it('computes λinit from the 0-based depth', () => {
    expect(lambdaInit(0)).toBeCloseTo(0.2, 12);
    expect(lambdaInit(1)).toBeCloseTo(0.8 - 0.6 * Math.exp(-0.3), 12);
  });

  it('counts parameters and validates a parameter set before use', () => {
    const c = resolveConfig({
      vocabSize: 10,
      hiddenSize: 8,
      numLayers: 1,
      numHeads: 1,
      intermediateSize: 16,
      tieWordEmbeddings: true,
    });
    // embed 80, attn: q 64 + k 64 + v 64 + out 64 + λ 4·4 + subln 8, norms 8+8, ffn 3·128, final norm 8
    expect(parameterCount(c)).toBe(80 + 64 * 4 + 16 + 8 + 16 + 384 + 8);
    const params = initParameters(c, { seed: 1 });
    expect(() => validateParameters(c, params)).not.toThrow();
    const missing = new Map(params);
    missing.delete('norm.weight');
    expect(() => validateParameters(c, missing, 'model.safetensors')).toThrow(ParameterError);
    expect(() => validateParameters(c, missing, 'model.safetensors')).toThrow(
      'model.safetensors: missing tensor(s): norm.weight',
    );
    const wrong = new Map(params);
    wrong.set('norm.weight', { shape: [9], data: new Float32Array(9) });
    expect(() => validateParameters(c, wrong)).toThrow(ShapeError);
    expect(() => validateParameters(c, wrong)).toThrow("tensor 'norm.weight': expected shape [8], got [9]");
    const extra = new Map(params);
    extra.set('lm_head.weight', { shape: [10, 8], data: new Float32Array(80) });
    expect(() => validateParameters(c, extra)).toThrow('unexpected tensor(s) for this config: lm_head.weight');
  });

  it('takes the ablation switches: no per-head norm, a fixed λinit, a scalar λ (defaults: the paper)', () => {
    const base = { vocabSize: 10, hiddenSize: 8, numLayers: 3, numHeads: 1, intermediateSize: 16 };
    const paper = resolveConfig(base);
    expect(paper.subLayerNorm).toEqual({ eps: 1e-5, affine: true });
    expect(paper.lambdaInit).toBe('depth');
    expect(paper.lambdaParameterization).toBe('reparameterized');
    expect([0, 1, 2].map((depth) => layerLambdaInit(paper, depth))).toEqual([0, 1, 2].map(lambdaInit));

    const ablated = resolveConfig({ ...base, subLayerNorm: null, lambdaInit: 0.8, lambdaParameterization: 'scalar' });
    expect(ablated.subLayerNorm).toBeNull();
    expect([0, 1, 2].map((depth) => layerLambdaInit(ablated, depth))).toEqual([0.8, 0.8, 0.8]);
    const shapes = parameterShapes(ablated);
    expect(shapes.has('layers.0.attn.subln.weight')).toBe(false);
    expect(shapes.has('layers.0.attn.lambda_q1')).toBe(false);
    expect(shapes.get('layers.2.attn.lambda')).toEqual([1]);
    // The four λ vectors (4·d = 16 per layer) and subln (8 per layer) become one number per layer.
    expect(parameterCount(paper) - parameterCount(ablated)).toBe(3 * (16 + 8 - 1));
    // A scalar λ starts at its layer's λinit, as the re-parameterised λ does (up to the small dot products).
    const scalar = resolveConfig({ ...base, lambdaParameterization: 'scalar' });
    const params = initParameters(scalar, { seed: 1 });
    expect([0, 1, 2].map((depth) => params.get(`layers.${depth}.attn.lambda`)!.data[0])).toEqual(
      [0, 1, 2].map((depth) => Math.fround(lambdaInit(depth))),
    );

    let error: ConfigError | undefined;
    try {
      // @ts-expect-error: a misspelt parameterization, as untyped JSON may bring
      resolveConfig({ ...base, lambdaInit: 1, lambdaParameterization: 'vector' });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.message).toContain("lambdaInit: expected 'depth' or a number in [0, 1), got 1");
    expect(error!.message).toContain("lambdaParameterization: expected 'reparameterized' or 'scalar', got \"vector\"");
  });

  it('initialises deterministically from the seed', () => {
    const c = resolveConfig({ vocabSize: 10, hiddenSize: 8, numLayers: 1, numHeads: 1 });
    const a = initParameters(c, { seed: 7 }).get('layers.0.attn.lambda_q1')!.data;
    const b = initParameters(c, { seed: 7 }).get('layers.0.attn.lambda_q1')!.data;
    const other = initParameters(c, { seed: 8 }).get('layers.0.attn.lambda_q1')!.data;
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(other));
  });
});

describe('sampling on the host', () => {
  it('draws only among the top-k and the nucleus, reproducibly by seed', () => {
    const p = [0.05, 0.5, 0.3, 0.15];
    const draw = (seed: number, options: object) => {
      const r = createRandom(seed);
      return Array.from({ length: 200 }, () => sampleFromProbabilities(p, options, r));
    };
    expect(new Set(draw(1, { temperature: 1, topK: 2 }))).toEqual(new Set([1, 2]));
    expect(new Set(draw(1, { temperature: 1, topP: 0.75 }))).toEqual(new Set([1, 2]));
    expect(new Set(draw(1, { temperature: 1, topP: 0.5 }))).toEqual(new Set([1]));
    expect(draw(3, { temperature: 1 })).toEqual(draw(3, { temperature: 1 }));
    expect(draw(3, { temperature: 1 })).not.toEqual(draw(4, { temperature: 1 }));
    const counts = [0, 0, 0, 0];
    for (const i of draw(5, { temperature: 1 })) counts[i]++;
    expect(counts[1]).toBeGreaterThan(counts[3]);
  });

  it('draws uniform numbers in [0, 1) with a sane mean and normals with a sane variance', () => {
    const r = createRandom(42);
    let sum = 0;
    let sq = 0;
    let min = Infinity;
    let max = -Infinity;
    const n = 20000;
    // One expect per property, not per draw: 40000 expect calls took seconds (11 s on a loaded machine).
    for (let i = 0; i < n; i++) {
      const u = r.next();
      min = Math.min(min, u);
      max = Math.max(max, u);
      sum += u;
      const z = r.normal();
      sq += z * z;
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    expect(sum / n).toBeCloseTo(0.5, 1);
    expect(sq / n).toBeCloseTo(1, 1);
  });
});
