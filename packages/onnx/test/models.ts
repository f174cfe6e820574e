/** Small configs of every variant the exporter writes, with seeded random parameters (no backend needed). */
import {
  type HostTensor,
  initParameters,
  type ModelConfig,
  type ModelConfigInput,
  resolveConfig,
} from '@diff-transformer/core';

export const BASE: ModelConfigInput = { vocabSize: 96, hiddenSize: 32, numLayers: 2, numHeads: 2, maxPositions: 64 };

/** name → config overrides: DIFF V1 (MHA and GQA, both rotary layouts, ablations), V2, the baseline. */
export const VARIANTS: Record<string, Partial<ModelConfigInput>> = {
  'v1 mha interleaved': { attention: 'differential' },
  'v1 gqa half, tied, no subln weight': {
    attention: 'differential',
    numHeads: 4,
    numKvHeads: 2,
    hiddenSize: 64,
    rope: { layout: 'half', precision: 'float32' },
    subLayerNorm: { affine: false },
    tieWordEmbeddings: true,
  },
  'v1 scalar λ, no per-head norm': {
    attention: 'differential',
    lambdaParameterization: 'scalar',
    lambdaInit: 0.8,
    subLayerNorm: null,
  },
  'v2 gqa': { attention: 'differential-v2', numHeads: 4, numKvHeads: 2 },
  'baseline gqa': { attention: 'standard', numHeads: 4, numKvHeads: 2 },
};

export function variant(name: string, seed = 1): { config: ModelConfig; parameters: Map<string, HostTensor> } {
  const config = resolveConfig({ ...BASE, ...VARIANTS[name] } as ModelConfigInput);
  return { config, parameters: initParameters(config, { seed, perturbNorms: 0.1 }) };
}
