/**
 * Model configuration. One decoder-only graph serves three attention variants, so that DIFF and
 * baseline models can be compared at matched size and checkpoints of every layout load onto it:
 *
 *   - 'differential'    DIFF Transformer (Ye et al. 2025), as the official multihead_flashdiff_1.py:
 *                       numHeads differential heads, each with two half-heads of width headDim (d) for Q
 *                       and K and one value head of width 2d; λ per layer; per-head RMSNorm; (1 − λinit).
 *   - 'differential-v2' DIFF Transformer V2 (official Diff-Transformer-V2/multihead_flashdiffv2.py):
 *                       2·numHeads query heads of width d, the two maps are query heads 2i and 2i+1,
 *                       shared keys, values of width d, λ = σ(x·W_λ) per token and head, no per-head norm.
 *   - 'standard'        the baseline Transformer: numHeads softmax-attention heads of width headDim.
 */
import type { RotaryLayout } from '../backend/kernels.js';
import { ConfigError } from '../errors.js';
import { type RopeScaling, type RopeScalingInput, resolveRopeScaling } from './rope-scaling.js';

export type AttentionKind = 'differential' | 'differential-v2' | 'standard';
export type LambdaParameterization = 'reparameterized' | 'scalar';

export interface ModelConfig {
  readonly vocabSize: number;
  /** d_model, the residual stream width (E). */
  readonly hiddenSize: number;
  readonly numLayers: number;
  /** Differential heads H (half of a matched baseline's heads), or attention heads for 'standard'. */
  readonly numHeads: number;
  /** Key/value heads (GQA); equal to numHeads for multi-head attention. */
  readonly numKvHeads: number;
  /** d: the half-head width for 'differential', the head width otherwise. */
  readonly headDim: number;
  /** Hidden width of the SwiGLU feed-forward. */
  readonly intermediateSize: number;
  readonly attention: AttentionKind;
  readonly rope: {
    readonly theta: number;
    readonly layout: RotaryLayout;
    /** How the tables are computed: 'float64' (exact, default) or 'float32' (as PyTorch/Hugging Face do). */
    readonly precision: 'float64' | 'float32';
    /**
     * How positions are scaled (./rope-scaling.ts: linear, dynamic NTK, YaRN, LongRoPE, Llama 3);
     * { type: 'default' } (plain RoPE) when a config does not say, as every config before it.
     */
    readonly scaling: RopeScaling;
  };
  /** eps of the pre-RMSNorms and the final norm. */
  readonly normEps: number;
  /**
   * The per-head RMSNorm of differential attention ('subln'); affine false means no learned weight (the
   * norm still normalises). null removes the norm itself (the paper's "w/o GroupNorm" ablation): the
   * head output is DiffAttn·(1 − λinit), the fixed multiplier kept as the official code applies it.
   */
  readonly subLayerNorm: { readonly eps: number; readonly affine: boolean } | null;
  /**
   * DIFF V1's λinit: 'depth' (default) is the paper's schedule 0.8 − 0.6·exp(−0.3·depth); a number in
   * [0, 1) fixes it for every layer (the paper's ablation uses 0.8).
   */
  readonly lambdaInit: number | 'depth';
  /**
   * How DIFF V1 learns λ: 'reparameterized' (default) λ = exp(λq1·λk1) − exp(λq2·λk2) + λinit from four
   * vectors of width d; 'scalar' one learned number per layer (parameter `lambda` [1], starting at λinit),
   * the ablation the re-parameterisation is measured against.
   */
  readonly lambdaParameterization: LambdaParameterization;
  /** Whether the LM head reuses the token embedding matrix. */
  readonly tieWordEmbeddings: boolean;
  /** Longest context the rotary tables are first built for (they grow on demand). */
  readonly maxPositions: number;
}

/** What a user writes: everything but the sizes has a default. */
export type ModelConfigInput = Pick<ModelConfig, 'vocabSize' | 'hiddenSize' | 'numLayers' | 'numHeads'> &
  Partial<Omit<ModelConfig, 'rope' | 'subLayerNorm'>> & {
    rope?: Partial<Omit<ModelConfig['rope'], 'scaling'>> & { scaling?: RopeScalingInput };
    subLayerNorm?: Partial<NonNullable<ModelConfig['subLayerNorm']>> | null;
  };

const ATTENTION_KINDS: readonly AttentionKind[] = ['differential', 'differential-v2', 'standard'];

/** Fills in defaults and validates; throws ConfigError naming every offending field. */
export function resolveConfig(input: ModelConfigInput): ModelConfig {
  const problems: { field: string; message: string }[] = [];
  const positiveInt = (field: string, value: unknown): void => {
    if (!Number.isInteger(value) || (value as number) < 1) {
      problems.push({ field, message: `expected a positive integer, got ${JSON.stringify(value)}` });
    }
  };
  positiveInt('vocabSize', input.vocabSize);
  positiveInt('hiddenSize', input.hiddenSize);
  positiveInt('numLayers', input.numLayers);
  positiveInt('numHeads', input.numHeads);

  const attention = input.attention ?? 'differential';
  if (!ATTENTION_KINDS.includes(attention)) {
    problems.push({
      field: 'attention',
      message: `expected one of ${ATTENTION_KINDS.join(', ')}, got ${JSON.stringify(attention)}`,
    });
  }
  const numHeads = input.numHeads;
  const numKvHeads = input.numKvHeads ?? numHeads;
  positiveInt('numKvHeads', numKvHeads);
  if (Number.isInteger(numHeads) && Number.isInteger(numKvHeads) && numKvHeads >= 1 && numHeads % numKvHeads !== 0) {
    problems.push({
      field: 'numKvHeads',
      message: `numHeads (${numHeads}) must be a multiple of numKvHeads (${numKvHeads})`,
    });
  }

  // Official rule: d = d_model / num_heads / 2 for DIFF (two half-heads per head), d_model / num_heads otherwise.
  const widthPerHead = attention === 'differential' ? 2 * numHeads : numHeads;
  let headDim = input.headDim;
  if (headDim === undefined) {
    if (Number.isInteger(input.hiddenSize) && Number.isInteger(numHeads) && input.hiddenSize % widthPerHead !== 0) {
      problems.push({
        field: 'hiddenSize',
        message:
          attention === 'differential'
            ? `hiddenSize (${input.hiddenSize}) must be divisible by 2·numHeads (${widthPerHead}), or give headDim`
            : `hiddenSize (${input.hiddenSize}) must be divisible by numHeads (${numHeads}), or give headDim`,
      });
    }
    headDim = input.hiddenSize / widthPerHead;
  } else {
    positiveInt('headDim', headDim);
  }
  if (Number.isInteger(headDim) && headDim % 2 !== 0) {
    problems.push({ field: 'headDim', message: `rotary embedding needs an even head width, got ${headDim}` });
  }

  const intermediateSize = input.intermediateSize ?? defaultIntermediateSize(input.hiddenSize);
  positiveInt('intermediateSize', intermediateSize);

  const scaling = resolveRopeScaling(input.rope?.scaling, Number.isInteger(headDim) ? headDim : 2);
  for (const { field, message } of scaling.problems)
    problems.push({ field: `rope.scaling${field ? `.${field}` : ''}`, message });
  const rope = {
    theta: input.rope?.theta ?? 10000,
    layout: input.rope?.layout ?? 'interleaved',
    precision: input.rope?.precision ?? 'float64',
    scaling: scaling.scaling ?? ({ type: 'default' } as const),
  };
  if (!(rope.theta > 0) || !Number.isFinite(rope.theta)) {
    problems.push({ field: 'rope.theta', message: `expected a positive number, got ${JSON.stringify(rope.theta)}` });
  }
  if (rope.layout !== 'interleaved' && rope.layout !== 'half') {
    problems.push({
      field: 'rope.layout',
      message: `expected 'interleaved' or 'half', got ${JSON.stringify(rope.layout)}`,
    });
  }
  if (rope.precision !== 'float64' && rope.precision !== 'float32') {
    problems.push({
      field: 'rope.precision',
      message: `expected 'float64' or 'float32', got ${JSON.stringify(rope.precision)}`,
    });
  }
  const normEps = input.normEps ?? 1e-5;
  const subLayerNorm =
    input.subLayerNorm === null
      ? null
      : { eps: input.subLayerNorm?.eps ?? 1e-5, affine: input.subLayerNorm?.affine ?? true };
  for (const [field, eps] of [
    ['normEps', normEps],
    ['subLayerNorm.eps', subLayerNorm?.eps ?? 0],
  ] as const) {
    if (!(eps >= 0) || !Number.isFinite(eps))
      problems.push({ field, message: `expected a number ≥ 0, got ${JSON.stringify(eps)}` });
  }
  const lambdaInitOption = input.lambdaInit ?? 'depth';
  if (
    lambdaInitOption !== 'depth' &&
    !(typeof lambdaInitOption === 'number' && lambdaInitOption >= 0 && lambdaInitOption < 1)
  ) {
    problems.push({
      field: 'lambdaInit',
      message: `expected 'depth' or a number in [0, 1), got ${JSON.stringify(lambdaInitOption)}`,
    });
  }
  const lambdaParameterization = input.lambdaParameterization ?? 'reparameterized';
  if (lambdaParameterization !== 'reparameterized' && lambdaParameterization !== 'scalar') {
    problems.push({
      field: 'lambdaParameterization',
      message: `expected 'reparameterized' or 'scalar', got ${JSON.stringify(lambdaParameterization)}`,
    });
  }
  const maxPositions = input.maxPositions ?? 2048;
  positiveInt('maxPositions', maxPositions);

  if (problems.length) throw new ConfigError(problems);
  return Object.freeze({
    vocabSize: input.vocabSize,
    hiddenSize: input.hiddenSize,
    numLayers: input.numLayers,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize,
    attention,
    rope: Object.freeze(rope),
    normEps,
    subLayerNorm: subLayerNorm && Object.freeze(subLayerNorm),
    lambdaInit: lambdaInitOption,
    lambdaParameterization,
    tieWordEmbeddings: input.tieWordEmbeddings ?? false,
    maxPositions,
  });
}

/** SwiGLU keeps the parameter count of a 4·d MLP with a hidden width of 8/3·d, rounded up to 64. */
export function defaultIntermediateSize(hiddenSize: number): number {
  return Math.ceil((8 * hiddenSize) / 3 / 64) * 64;
}

/** λinit = 0.8 − 0.6·exp(−0.3·depth), depth counted from 0 as in the official code. */
export function lambdaInit(depth: number): number {
  return 0.8 - 0.6 * Math.exp(-0.3 * depth);
}

/** λinit of layer `depth` under a config: the depth schedule, or the fixed value it gives. */
export function layerLambdaInit(config: Pick<ModelConfig, 'lambdaInit'>, depth: number): number {
  return config.lambdaInit === 'depth' ? lambdaInit(depth) : config.lambdaInit;
}
