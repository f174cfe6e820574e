/**
 * How large the experiments are. A scale names every model and run length; `--scale FILE` reads one
 * from JSON (sections it leaves out are the tiny scale's).
 *
 *   toy    CI: proves the pipeline in seconds (nothing to learn from its numbers)
 *   tiny   the CPU report: `difftx experiment all --scale tiny` within 45 minutes on 2 cores. Sized
 *          from single training steps measured in CPU seconds (all threads; a shared machine inflates
 *          wall time, not the work): 0.062 s per step for d64-L2 at 8 × 128 tokens, 0.145 s for d96-L3,
 *          0.105 s for the retrieval model at 8 × 256. 27 lm runs × 500 steps and 6 retrieval runs ×
 *          1500 steps come to about 2,160 CPU seconds, evaluations and the float64 maps about 250
 *          more: 40 minutes even if the second thread gained nothing (with it, about 25).
 *   small  for GPUs (WebGPU, CUDA): the same experiments at sizes where the paper's effects can start
 *          to show; not run on CPUs.
 *
 * Models are given as the DIFF side of a parameter-matched pair (train's presets: the baseline gets
 * twice the heads of half the width; DIFF V2 the baseline's heads with twice the query heads).
 */
import type { PresetModel } from '@diff-transformer/train';
import type { RetrievalTaskOptions } from './retrieval-task.js';

export interface RunLength {
  readonly steps: number;
  readonly batchSize: number;
  /** Training context in tokens. */
  readonly seqLen: number;
  readonly learningRate: number;
  readonly warmupSteps: number;
  /** Evaluate (validation loss) every N steps: the points of the loss curves. */
  readonly evalEvery: number;
  /** Validation tokens per evaluation during training. */
  readonly evalTokens: number;
  readonly weightDecay?: number;
}

export interface LmSize {
  /** e.g. "d64-L2": hidden width and layers. */
  readonly name: string;
  readonly model: PresetModel;
}

export interface ExperimentScale {
  readonly name: string;
  /** Seeds per configuration (init and data order), unless --seeds says otherwise. */
  readonly seeds: number;
  readonly lm: {
    readonly sizes: readonly LmSize[];
    readonly training: RunLength;
    /** Validation tokens of the final evaluation, the number the tables report. */
    readonly finalEvalTokens: number;
    /** Read DIFF V1's λ of every layer every N steps (the ablations' λ traces). */
    readonly lambdaEvery: number;
  };
  readonly retrieval: {
    readonly model: PresetModel;
    readonly task: RetrievalTaskOptions;
    /** Training context is training.seqLen; tested at these multiples of it. */
    readonly training: RunLength;
    readonly testMultiples: readonly number[];
    /** Test sequences per length (the same for every model). */
    readonly testSequences: number;
  };
  readonly attentionNoise: {
    /** Retrieval examples (at the training length) whose maps are measured, per model. */
    readonly examples: number;
  };
  readonly outliers: {
    /** The lm size whose models are measured. */
    readonly size: string;
    /** Validation sequences per model, and their length. */
    readonly sequences: number;
    readonly seqLen: number;
  };
  readonly ablations: {
    /** The lm size the ablations train at (its DIFF and baseline runs are the lm experiment's). */
    readonly size: string;
  };
}

const TOY: ExperimentScale = {
  name: 'toy',
  seeds: 2,
  lm: {
    sizes: [
      { name: 'd32-L1', model: { hiddenSize: 32, numLayers: 1, numHeads: 1, maxPositions: 64 } },
      { name: 'd32-L2', model: { hiddenSize: 32, numLayers: 2, numHeads: 1, maxPositions: 64 } },
    ],
    training: {
      steps: 4,
      batchSize: 2,
      seqLen: 32,
      learningRate: 3e-3,
      warmupSteps: 1,
      evalEvery: 2,
      evalTokens: 256,
    },
    finalEvalTokens: 512,
    lambdaEvery: 2,
  },
  retrieval: {
    model: { hiddenSize: 32, numLayers: 2, numHeads: 1, maxPositions: 128 },
    task: { keys: 8, values: 8, distractors: 8, needles: 2, queries: 1 },
    training: { steps: 4, batchSize: 2, seqLen: 32, learningRate: 3e-3, warmupSteps: 1, evalEvery: 2, evalTokens: 128 },
    testMultiples: [1, 2],
    testSequences: 4,
  },
  attentionNoise: { examples: 1 },
  outliers: { size: 'd32-L2', sequences: 1, seqLen: 16 },
  ablations: { size: 'd32-L1' },
};

const TINY: ExperimentScale = {
  name: 'tiny',
  seeds: 3,
  lm: {
    sizes: [
      { name: 'd64-L2', model: { hiddenSize: 64, numLayers: 2, numHeads: 2, maxPositions: 256 } },
      { name: 'd96-L3', model: { hiddenSize: 96, numLayers: 3, numHeads: 3, maxPositions: 256 } },
    ],
    training: {
      steps: 500,
      batchSize: 8,
      seqLen: 128,
      learningRate: 3e-3,
      warmupSteps: 25,
      evalEvery: 100,
      evalTokens: 16384,
    },
    finalEvalTokens: 65536,
    lambdaEvery: 20,
  },
  retrieval: {
    model: { hiddenSize: 64, numLayers: 2, numHeads: 2, maxPositions: 1024 },
    // Every needle queried (as multi-query associative recall does): the most answers per sequence to learn
    // from. At lr 1e-2 neither model left chance in 800 steps; at 3e-3 both learn, so more steps at 3e-3.
    task: { keys: 16, values: 16, distractors: 60, needles: 8, queries: 8 },
    training: {
      steps: 1500,
      batchSize: 8,
      seqLen: 256,
      learningRate: 3e-3,
      warmupSteps: 75,
      evalEvery: 250,
      evalTokens: 8192,
    },
    testMultiples: [1, 2, 4],
    testSequences: 64,
  },
  attentionNoise: { examples: 8 },
  outliers: { size: 'd96-L3', sequences: 4, seqLen: 128 },
  ablations: { size: 'd64-L2' },
};

const SMALL: ExperimentScale = {
  name: 'small',
  seeds: 3,
  lm: {
    sizes: [
      { name: 'd256-L6', model: { hiddenSize: 256, numLayers: 6, numHeads: 4, maxPositions: 512 } },
      { name: 'd384-L8', model: { hiddenSize: 384, numLayers: 8, numHeads: 6, maxPositions: 512 } },
    ],
    training: {
      steps: 5000,
      batchSize: 16,
      seqLen: 256,
      learningRate: 1.5e-3,
      warmupSteps: 200,
      evalEvery: 500,
      evalTokens: 65536,
    },
    finalEvalTokens: 262144,
    lambdaEvery: 50,
  },
  retrieval: {
    model: { hiddenSize: 256, numLayers: 4, numHeads: 4, maxPositions: 2048 },
    task: { keys: 128, values: 128, distractors: 256, needles: 16, queries: 4 },
    training: {
      steps: 4000,
      batchSize: 16,
      seqLen: 512,
      learningRate: 1e-3,
      warmupSteps: 200,
      evalEvery: 500,
      evalTokens: 32768,
    },
    testMultiples: [1, 2, 4],
    testSequences: 128,
  },
  attentionNoise: { examples: 16 },
  outliers: { size: 'd384-L8', sequences: 8, seqLen: 256 },
  ablations: { size: 'd256-L6' },
};

export const SCALES: Readonly<Record<'toy' | 'tiny' | 'small', ExperimentScale>> = {
  toy: TOY,
  tiny: TINY,
  small: SMALL,
};

/** Thrown for a scale that cannot run: names the field, what was expected and what came. */
export class ScaleError extends Error {
  constructor(source: string, field: string, expected: string, got: unknown) {
    super(`${source}: ${field}: expected ${expected}, got ${JSON.stringify(got)}`);
    this.name = 'ScaleError';
  }
}

/**
 * A scale from a JSON document: any of name, seeds, lm, retrieval, attentionNoise, outliers, ablations;
 * each section given replaces the tiny scale's field by field. `source` names it in messages.
 */
export function parseScale(json: unknown, source: string): ExperimentScale {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ScaleError(source, 'the document', 'a JSON object {"lm": {…}, "retrieval": {…}, …}', json);
  }
  const given = json as Partial<Record<keyof ExperimentScale, unknown>>;
  const section = <K extends keyof ExperimentScale>(key: K): ExperimentScale[K] => {
    const value = given[key];
    if (value === undefined) return TINY[key];
    if (typeof TINY[key] === 'object') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new ScaleError(source, key, 'an object', value);
      }
      return { ...(TINY[key] as object), ...(value as object) } as ExperimentScale[K];
    }
    return value as ExperimentScale[K];
  };
  const scale: ExperimentScale = {
    name: typeof given.name === 'string' ? given.name : source,
    seeds: section('seeds'),
    lm: section('lm'),
    retrieval: section('retrieval'),
    attentionNoise: section('attentionNoise'),
    outliers: section('outliers'),
    ablations: section('ablations'),
  };
  validateScale(scale, source);
  return scale;
}

export function validateScale(scale: ExperimentScale, source = scale.name): void {
  const positiveInt = (field: string, x: unknown) => {
    if (!Number.isInteger(x) || (x as number) < 1) throw new ScaleError(source, field, 'an integer ≥ 1', x);
  };
  positiveInt('seeds', scale.seeds);
  if (!Array.isArray(scale.lm.sizes) || scale.lm.sizes.length === 0) {
    throw new ScaleError(source, 'lm.sizes', 'a non-empty array of {name, model}', scale.lm.sizes);
  }
  const names = scale.lm.sizes.map((s) => s.name);
  for (const [field, name] of [
    ['outliers.size', scale.outliers.size],
    ['ablations.size', scale.ablations.size],
  ] as const) {
    if (!names.includes(name)) throw new ScaleError(source, field, `one of the lm sizes (${names.join(', ')})`, name);
  }
  for (const [field, run] of [
    ['lm.training', scale.lm.training],
    ['retrieval.training', scale.retrieval.training],
  ] as const) {
    for (const key of ['steps', 'batchSize', 'seqLen', 'evalEvery', 'evalTokens'] as const) {
      positiveInt(`${field}.${key}`, run[key]);
    }
  }
  positiveInt('retrieval.testSequences', scale.retrieval.testSequences);
  positiveInt('attentionNoise.examples', scale.attentionNoise.examples);
  positiveInt('outliers.sequences', scale.outliers.sequences);
  positiveInt('outliers.seqLen', scale.outliers.seqLen);
  if (!scale.retrieval.testMultiples.every((m) => Number.isInteger(m) && m >= 1)) {
    throw new ScaleError(source, 'retrieval.testMultiples', 'integers ≥ 1', scale.retrieval.testMultiples);
  }
}
