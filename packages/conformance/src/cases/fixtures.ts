/**
 * The small models the whole-model cases run: every attention variant, multi-head and GQA, tied and
 * untied LM heads, both rotary layouts, enough layers that λinit differs between them, and DIFF's
 * ablation switches (no per-head norm, a fixed λinit, a scalar λ).
 * Parameters come from core's initParameters with norm weights jittered around 1 (so a dropped weight
 * shows) and a std large enough that attention, not the embedding, dominates the residual stream.
 */
import type { HostTensor, ModelConfig, ModelConfigInput } from '@diff-transformer/core';
import { initParameters, resolveConfig } from '@diff-transformer/core';

export interface ModelFixture {
  readonly label: string;
  readonly config: ModelConfigInput;
  readonly seed: number;
}

const vocabSize = 97;

export const FIXTURES = {
  diffMhaTied: {
    label: 'diff mha tied interleaved L2',
    config: {
      vocabSize,
      hiddenSize: 64,
      numLayers: 2,
      numHeads: 2,
      tieWordEmbeddings: true,
      rope: { layout: 'interleaved' },
    },
    seed: 101,
  },
  diffGqa2Half: {
    label: 'diff gqa2 untied half L3',
    config: {
      vocabSize,
      hiddenSize: 128,
      numLayers: 3,
      numHeads: 4,
      numKvHeads: 2,
      intermediateSize: 160,
      rope: { layout: 'half' },
    },
    seed: 102,
  },
  diffGqa4NoSublnWeight: {
    label: 'diff gqa4 untied interleaved L3 θ 500000 subln without weight',
    config: {
      vocabSize,
      hiddenSize: 128,
      numLayers: 3,
      numHeads: 4,
      numKvHeads: 1,
      rope: { layout: 'interleaved', theta: 500000 },
      subLayerNorm: { affine: false },
    },
    seed: 103,
  },
  diffHeadDim32: {
    label: 'diff mha tied half headDim 32 L2',
    config: {
      vocabSize,
      hiddenSize: 64,
      numLayers: 2,
      numHeads: 2,
      headDim: 32,
      tieWordEmbeddings: true,
      rope: { layout: 'half' },
    },
    seed: 104,
  },
  diffNoSublnLambdaInit08: {
    label: 'diff mha untied interleaved L3 without subln, λinit 0.8',
    config: { vocabSize, hiddenSize: 64, numLayers: 3, numHeads: 2, subLayerNorm: null, lambdaInit: 0.8 },
    seed: 109,
  },
  diffScalarLambdaGqa2: {
    label: 'diff gqa2 untied half L2 scalar λ',
    config: {
      vocabSize,
      hiddenSize: 64,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      rope: { layout: 'half' },
      lambdaParameterization: 'scalar',
    },
    seed: 110,
  },
  v2Mha: {
    label: 'diff-v2 mha untied interleaved L2',
    config: { vocabSize, hiddenSize: 64, numLayers: 2, numHeads: 2, attention: 'differential-v2' },
    seed: 105,
  },
  v2Gqa2Half: {
    label: 'diff-v2 gqa2 untied half L3',
    config: {
      vocabSize,
      hiddenSize: 64,
      numLayers: 3,
      numHeads: 4,
      numKvHeads: 2,
      attention: 'differential-v2',
      rope: { layout: 'half' },
    },
    seed: 106,
  },
  standardMhaTied: {
    label: 'standard mha tied interleaved L2',
    config: { vocabSize, hiddenSize: 64, numLayers: 2, numHeads: 4, attention: 'standard', tieWordEmbeddings: true },
    seed: 107,
  },
  standardGqa4Half: {
    label: 'standard gqa4 untied half L3',
    config: {
      vocabSize,
      hiddenSize: 64,
      numLayers: 3,
      numHeads: 4,
      numKvHeads: 1,
      attention: 'standard',
      rope: { layout: 'half' },
    },
    seed: 108,
  },
} satisfies Record<string, ModelFixture>;

/** The resolved config and deterministic host parameters of a fixture. */
export function fixtureModel(fixture: ModelFixture): { config: ModelConfig; parameters: Map<string, HostTensor> } {
  const config = resolveConfig(fixture.config);
  const parameters = initParameters(config, { seed: fixture.seed, std: 0.05, perturbNorms: 0.1 });
  // A scalar λ starts at λinit; moved off it, a model that used λinit in its place would show.
  for (const [name, p] of parameters) if (name.endsWith('.attn.lambda')) p.data[0] += 0.15;
  return { config, parameters };
}
