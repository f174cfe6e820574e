/**
 * Model sizes for training, as DIFF/baseline pairs matched in parameters the way the paper does: the
 * preset names the DIFF Transformer (H differential heads, each two half-heads of width d for Q and K
 * and a value head of width 2d); the baseline Transformer has twice the heads, each of width d (half
 * the heads of twice the width in DIFF), so every projection has the same shape and the two differ only
 * by DIFF's λ vectors (4d per layer). DIFF V2 gets the baseline's heads and, as in its design, twice the
 * query heads.
 *
 * The defaults are what transformers' DiffLlama can hold (half-layout rotary with float32 tables, a
 * per-head norm without weight, one eps), so a trained DIFF model exports as it is.
 */
import {
  parameterCount,
  resolveConfig,
  type AttentionKind,
  type ModelConfig,
  type ModelConfigInput,
} from '@diff-transformer/core';
import { TrainingConfigError } from './errors.js';
import type { TrainingOptions } from './trainer.js';

/** The DIFF side of a pair, without the vocabulary (the tokenizer decides it). */
export type PresetModel = Omit<ModelConfigInput, 'vocabSize'> & { readonly vocabSize?: number };

export interface Preset {
  readonly name: string;
  readonly model: PresetModel;
  /** Training defaults for this size (the command line overrides each). */
  readonly training: Omit<TrainingOptions, 'adamw'> & { readonly weightDecay?: number };
}

const EXPORTABLE = {
  rope: { layout: 'half', precision: 'float32' },
  subLayerNorm: { affine: false },
  normEps: 1e-5,
} as const;

export const PRESETS: Readonly<Record<'tiny' | 'small', Preset>> = {
  tiny: {
    name: 'tiny',
    model: { hiddenSize: 128, numLayers: 4, numHeads: 2, maxPositions: 256, ...EXPORTABLE },
    training: {
      steps: 1500,
      batchSize: 16,
      seqLen: 128,
      learningRate: 3e-3,
      warmupSteps: 100,
      decay: 'cosine',
      evalEvery: 250,
      evalTokens: 32768,
    },
  },
  small: {
    name: 'small',
    model: { hiddenSize: 256, numLayers: 6, numHeads: 4, maxPositions: 512, ...EXPORTABLE },
    training: {
      steps: 5000,
      batchSize: 16,
      seqLen: 256,
      learningRate: 1.5e-3,
      warmupSteps: 200,
      decay: 'cosine',
      evalEvery: 500,
      evalTokens: 65536,
    },
  },
};

export const SIZE_NAMES = Object.keys(PRESETS) as Array<keyof typeof PRESETS>;

/**
 * The model of `attention` matched to a DIFF preset model: the baseline and V2 get 2·H heads (and 2·Hkv
 * key/value heads) of the DIFF half-head width d.
 */
export function matchedModel(diff: ModelConfigInput, attention: AttentionKind): ModelConfigInput {
  if (attention === 'differential') return { ...diff, attention };
  const reference = resolveConfig({ ...diff, attention: 'differential' });
  return {
    ...diff,
    attention,
    numHeads: 2 * reference.numHeads,
    numKvHeads: 2 * reference.numKvHeads,
    headDim: reference.headDim,
  };
}

/** A preset's model for a vocabulary and an attention kind, resolved. */
export function presetModelConfig(
  preset: Preset,
  attention: AttentionKind | undefined,
  vocabSize: number,
): ModelConfig {
  const given = preset.model.attention;
  if (given !== undefined && attention !== undefined && given !== attention) {
    throw new TrainingConfigError(
      'attention',
      `the preset's own attention '${given}' (a preset that names one is taken as it is)`,
      attention,
    );
  }
  const base = { ...preset.model, vocabSize: preset.model.vocabSize ?? vocabSize } as ModelConfigInput;
  return resolveConfig(given !== undefined ? base : matchedModel(base, attention ?? 'differential'));
}

/** Parameter counts of the DIFF model and its matched baseline (the paper's comparison). */
export function pairCounts(preset: Preset, vocabSize: number): { differential: number; standard: number } {
  if (preset.model.attention !== undefined) {
    const own = parameterCount(presetModelConfig(preset, undefined, vocabSize));
    return { differential: own, standard: own };
  }
  return {
    differential: parameterCount(presetModelConfig(preset, 'differential', vocabSize)),
    standard: parameterCount(presetModelConfig(preset, 'standard', vocabSize)),
  };
}

/**
 * A preset from a JSON document: {"model": {hiddenSize, numLayers, numHeads, …}, "training": {…}}; the
 * model gets the presets' exportable defaults where it is silent, the training part defaults to the tiny
 * preset's. `source` names it in messages.
 */
export function parsePreset(json: unknown, source: string): Preset {
  if (typeof json !== 'object' || json === null || Array.isArray(json) || !('model' in json)) {
    throw new TrainingConfigError(
      source,
      'a JSON object {"model": {"hiddenSize": …, "numLayers": …, "numHeads": …}, "training": {…}}',
      Array.isArray(json) ? 'an array' : typeof json === 'object' && json ? 'an object without "model"' : typeof json,
    );
  }
  const { model, training } = json as { model: unknown; training?: unknown };
  if (typeof model !== 'object' || model === null || Array.isArray(model))
    throw new TrainingConfigError(`${source}: model`, 'an object', typeof model);
  if (training !== undefined && (typeof training !== 'object' || training === null || Array.isArray(training)))
    throw new TrainingConfigError(`${source}: training`, 'an object', typeof training);
  const given = model as PresetModel;
  const preset: Preset = {
    name: source,
    // The exportable defaults hold unless the file says otherwise, field by field.
    model: {
      ...EXPORTABLE,
      ...given,
      rope: { ...EXPORTABLE.rope, ...given.rope },
      // null is the "no per-head norm" ablation, kept as it is.
      subLayerNorm: given.subLayerNorm === null ? null : { ...EXPORTABLE.subLayerNorm, ...given.subLayerNorm },
    },
    training: { ...PRESETS.tiny.training, ...(training as Partial<Preset['training']>) },
  };
  // Resolve once so a bad field is reported now, with the file's name.
  try {
    presetModelConfig(preset, undefined, preset.model.vocabSize ?? 256);
  } catch (error) {
    throw new TrainingConfigError(`${source}: model`, 'a valid model config', (error as Error).message);
  }
  return preset;
}
