import { describe, expect, it } from 'vitest';
import {
  CheckpointConfigError,
  UnsupportedCheckpointError,
  diffLlamaDims,
  diffLlamaHeadMap,
  diffLlamaModelConfig,
  diffLlamaParameterShapes,
  fromDiffLlamaParameters,
  initParameters,
  parameterShapes,
  resolveConfig,
  toDiffLlama,
  type HostTensor,
} from '../src/index.js';

const base = {
  model_type: 'diffllama',
  vocab_size: 50,
  hidden_size: 32,
  intermediate_size: 40,
  num_hidden_layers: 2,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  head_dim: 4,
};

describe('DiffLlama config mapping', () => {
  it('maps every field onto the graph: H/2 heads, Hkv/2 groups, half-layout float64 rotary, no subln weight', () => {
    const dims = diffLlamaDims(
      {
        ...base,
        rms_norm_eps: 1e-6,
        tie_word_embeddings: true,
        rope_parameters: { rope_type: 'default', rope_theta: 500000 },
      },
      'c.json',
    );
    const config = diffLlamaModelConfig(dims, 'c.json');
    expect(config).toMatchObject({
      vocabSize: 50,
      hiddenSize: 32,
      intermediateSize: 40,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 4,
      attention: 'differential',
      rope: { theta: 500000, layout: 'half', precision: 'float64', scaling: { type: 'default' } },
      normEps: 1e-6,
      subLayerNorm: { eps: 1e-6, affine: false },
      tieWordEmbeddings: true,
    });
    expect(diffLlamaParameterShapes(dims).has('lm_head.weight')).toBe(false);
  });

  it('reads the older rope_theta / rope_scaling fields and the defaults', () => {
    const dims = diffLlamaDims(
      { ...base, num_key_value_heads: undefined, head_dim: undefined, rope_theta: 1234, rope_scaling: null },
      'c.json',
    );
    expect(dims).toMatchObject({
      numKeyValueHeads: 8,
      headDim: 4,
      ropeTheta: 1234,
      rmsNormEps: 1e-5,
      tieWordEmbeddings: false,
    });
    expect(diffLlamaDims({ ...base, rope_scaling: { type: 'default' } }, 'c.json').ropeTheta).toBe(10000);
    expect(
      diffLlamaModelConfig(diffLlamaDims({ ...base, num_key_value_heads: 1 }, 'c.json'), 'c.json').numKvHeads,
    ).toBe(4); // odd: expanded to MHA
    expect(
      diffLlamaModelConfig(diffLlamaDims({ ...base, num_key_value_heads: 2 }, 'c.json'), 'c.json').numKvHeads,
    ).toBe(1);
  });

  it('reads every rope_type transformers accepts, in both spellings, with its defaults', () => {
    const llama3 = { factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    const expectedLlama3 = {
      type: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositions: 8192,
    };
    // transformers 4 (rope_theta + rope_scaling, rope_type or the legacy type key) and 5 (rope_parameters).
    for (const json of [
      { rope_theta: 5e5, rope_scaling: { rope_type: 'llama3', ...llama3 } },
      { rope_theta: 5e5, rope_scaling: { type: 'llama3', ...llama3 } },
      { rope_parameters: { rope_type: 'llama3', rope_theta: 5e5, ...llama3 } },
    ]) {
      const dims = diffLlamaDims({ ...base, max_position_embeddings: 131072, ...json }, 'c.json');
      expect(dims.ropeTheta).toBe(5e5);
      expect(dims.ropeScaling).toEqual(expectedLlama3);
      expect(diffLlamaModelConfig(dims, 'c.json').rope.scaling).toEqual(expectedLlama3);
    }
    const read = (scaling: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      diffLlamaDims({ ...base, max_position_embeddings: 4096, ...extra, rope_scaling: scaling }, 'c.json').ropeScaling;
    expect(read({ type: 'linear', factor: 2 })).toEqual({ type: 'linear', factor: 2 });
    // dynamic NTK grows from max_position_embeddings.
    expect(read({ type: 'dynamic', factor: 2 })).toEqual({ type: 'dynamic', factor: 2, originalMaxPositions: 4096 });
    // yarn: attention factor 0.1·ln(factor) + 1, β 32 / 1, truncated ramp; original length from
    // max_position_embeddings when not given, and a top-level original_max_position_embeddings wins.
    expect(read({ rope_type: 'yarn', factor: 4 })).toEqual({
      type: 'yarn',
      factor: 4,
      originalMaxPositions: 4096,
      attentionFactor: 0.1 * Math.log(4) + 1,
      betaFast: 32,
      betaSlow: 1,
      truncate: true,
    });
    expect(
      read(
        { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 1024, mscale: 0.5, mscale_all_dim: 1 },
        { original_max_position_embeddings: 2048 },
      ),
    ).toMatchObject({
      originalMaxPositions: 2048,
      attentionFactor: (0.05 * Math.log(4) + 1) / (0.1 * Math.log(4) + 1),
    });
    expect(
      read({ rope_type: 'yarn', factor: null, original_max_position_embeddings: 1024, beta_fast: 0 }),
    ).toMatchObject({ factor: 4, betaFast: 32 });
    const short = [1, 1];
    const long = [2, 3];
    // longrope: the factor defaults to max_position_embeddings / original, and gives the attention factor.
    expect(
      read({ type: 'longrope', short_factor: short, long_factor: long, original_max_position_embeddings: 1024 }),
    ).toEqual({
      type: 'longrope',
      shortFactor: short,
      longFactor: long,
      originalMaxPositions: 1024,
      attentionFactor: Math.sqrt(1 + Math.log(4) / Math.log(1024)),
    });
    expect(read({ type: 'longrope', short_factor: short, long_factor: long, attention_factor: 1.5 })).toMatchObject({
      attentionFactor: 1.5,
    });
  });

  it('refuses an unknown rope type by name, and names a missing or bad rope field', () => {
    for (const type of ['su', 'proportional', 'mrope']) {
      expect(() =>
        diffLlamaDims({ ...base, rope_parameters: { rope_type: type, rope_theta: 1e4, factor: 2 } }, 'c.json'),
      ).toThrow(new RegExp(`rope_parameters.rope_type "${type}" is not supported; supported: "default", "linear"`));
      expect(() => diffLlamaDims({ ...base, rope_scaling: { type, factor: 2 } }, 'c.json')).toThrow(
        UnsupportedCheckpointError,
      );
    }
    expect(() => diffLlamaDims({ ...base, rope_scaling: { rope_type: 'llama3', factor: 8 } }, 'c.json')).toThrow(
      /c.json: rope_scaling.low_freq_factor: rope_type "llama3" needs low_freq_factor, high_freq_factor/,
    );
    expect(() =>
      diffLlamaDims({ ...base, rope_parameters: { rope_type: 'linear', rope_theta: 1e4 } }, 'c.json'),
    ).toThrow(CheckpointConfigError);
    expect(() =>
      diffLlamaDims(
        { ...base, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 4, high_freq_factor: 1 } },
        'c.json',
      ),
    ).toThrow(/rope_scaling.high_freq_factor: must be greater than low_freq_factor \(4\), got 1/);
    expect(() =>
      diffLlamaDims({ ...base, rope_scaling: { type: 'longrope', short_factor: [1], long_factor: [1, 2] } }, 'c.json'),
    ).toThrow(/short_factor: expected 2 numbers > 0 \(one per rotated pair\), got \[1\]/);
    expect(() => diffLlamaDims({ ...base, rope_scaling: { type: 'linear', factor: 'x' } }, 'c.json')).toThrow(
      /rope_scaling.factor: expected a number > 0, got "x"/,
    );
  });

  it('refuses other unsupported features with typed errors', () => {
    // A legacy rope_scaling beside rope_parameters would be dropped unseen: refused, unless it asks for nothing.
    const both = {
      ...base,
      rope_parameters: { rope_type: 'default', rope_theta: 1e4 },
      rope_scaling: { type: 'linear', factor: 4 },
    };
    expect(() => diffLlamaDims(both, 'c.json')).toThrow(CheckpointConfigError);
    expect(() => diffLlamaDims(both, 'c.json')).toThrow(
      /c.json: rope_scaling: the legacy rope_scaling \{"type":"linear","factor":4\} is given beside rope_parameters/,
    );
    expect(() => diffLlamaDims({ ...both, rope_scaling: { rope_theta: 5e5 } }, 'c.json')).toThrow(/legacy/);
    expect(
      diffLlamaDims({ ...both, rope_scaling: { rope_type: 'default', rope_theta: 1e4 } }, 'c.json').ropeTheta,
    ).toBe(1e4);
    expect(() => diffLlamaDims({ ...base, attention_bias: true }, 'c.json')).toThrow(UnsupportedCheckpointError);
    expect(() => diffLlamaDims({ ...base, hidden_act: 'gelu' }, 'c.json')).toThrow(/hidden_act "gelu"/);
    expect(() => diffLlamaDims({ ...base, num_attention_heads: 7, num_key_value_heads: 7 }, 'c.json')).toThrow(
      CheckpointConfigError,
    );
    expect(() => diffLlamaDims({ ...base, num_key_value_heads: 3 }, 'c.json')).toThrow(/multiple of it/);
    expect(() => diffLlamaDims({ ...base, vocab_size: 0 }, 'c.json')).toThrow(
      /c.json: vocab_size: expected a positive integer/,
    );
  });
});

describe('DiffLlama head permutation', () => {
  it('with Hkv even, is a pure permutation: every HF head is used exactly once', () => {
    for (const [h, hkv] of [
      [8, 4],
      [8, 2],
      [8, 8],
      [12, 6],
      [4, 2],
    ]) {
      const dims = diffLlamaDims({ ...base, num_attention_heads: h, num_key_value_heads: hkv }, 'c.json');
      const map = diffLlamaHeadMap(dims, diffLlamaModelConfig(dims, 'c.json'));
      expect([...map.q].sort((a, b) => a - b)).toEqual([...Array(h).keys()]);
      expect([...map.k].sort((a, b) => a - b)).toEqual([...Array(hkv).keys()]);
      expect(map.v.flat().sort((a, b) => a - b)).toEqual([...Array(hkv).keys()]);
    }
  });

  it('pairs query heads i and H/2 + i, with the kv heads each of them reads in HF', () => {
    // H = 8, Hkv = 2 (n = 4): HF query head j reads kv head ⌊j/4⌋.
    const dims = diffLlamaDims({ ...base, num_key_value_heads: 2 }, 'c.json');
    const config = diffLlamaModelConfig(dims, 'c.json');
    const map = diffLlamaHeadMap(dims, config);
    expect(map.q).toEqual([0, 4, 1, 5, 2, 6, 3, 7]);
    expect(config.numKvHeads).toBe(1);
    expect(map.k).toEqual([0, 1]); // map 1 reads kv head 0 (heads 0–3), map 2 kv head 1 (heads 4–7)
    expect(map.v).toEqual([[0, 1]]);
    // Hkv = 1 (MQA, odd): every head's maps read kv head 0; expanded to 4 groups.
    const mqa = diffLlamaDims({ ...base, num_key_value_heads: 1 }, 'c.json');
    expect(diffLlamaHeadMap(mqa, diffLlamaModelConfig(mqa, 'c.json')).k).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    // H = 12, Hkv = 3 (n = 4, odd Hkv): head i's second map reads kv head ⌊(6 + i)/4⌋.
    const odd = diffLlamaDims({ ...base, num_attention_heads: 12, num_key_value_heads: 3, hidden_size: 48 }, 'c.json');
    const oddMap = diffLlamaHeadMap(odd, diffLlamaModelConfig(odd, 'c.json'));
    expect(oddMap.k).toEqual([0, 1, 0, 1, 0, 2, 0, 2, 1, 2, 1, 2]);
  });

  it('toDiffLlama inverts the load permutation exactly', () => {
    const config = resolveConfig({
      vocabSize: 30,
      hiddenSize: 32,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 4,
      rope: { layout: 'half', precision: 'float32' },
      subLayerNorm: { affine: false },
    });
    const params = initParameters(config, { seed: 3 });
    const { config: json, tensors } = toDiffLlama(config, params);
    expect(json).toMatchObject({ num_attention_heads: 8, num_key_value_heads: 4, head_dim: 4 });
    const dims = diffLlamaDims(json, 'config.json');
    const back = fromDiffLlamaParameters(dims, diffLlamaModelConfig(dims, 'config.json'), tensors);
    expect([...back.keys()].sort()).toEqual([...parameterShapes(config).keys()].sort());
    for (const [name, p] of params) expect(back.get(name)!.data, name).toEqual(p.data);
    const mismatched = resolveConfig({ vocabSize: 30, hiddenSize: 32, numLayers: 1, numHeads: 4 });
    expect(() => toDiffLlama(mismatched, new Map<string, HostTensor>())).toThrow(/cannot be written as DiffLlama/);
    // The ablation switches have no DiffLlama equivalent: each is named.
    const ablated = resolveConfig({
      ...config,
      subLayerNorm: null,
      lambdaInit: 0.8,
      lambdaParameterization: 'scalar',
    });
    expect(() => toDiffLlama(ablated, new Map<string, HostTensor>())).toThrow(
      /subLayerNorm null .*; lambdaInit 0\.8 .*; lambdaParameterization 'scalar'/,
    );
  });
});
