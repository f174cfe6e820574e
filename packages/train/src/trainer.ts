/**
 * The training loop. One step: for each micro-batch, the loss and its gradients (valueAndGrads over
 * the model's parameters), added up on the device; the global gradient norm (one number read back);
 * one AdamW update with the scheduled rate, the clipping factor and the 1/micro-batches mean fused into
 * it. The loss is the only other number read back. Everything that decides the next step — parameters,
 * moments, the step count, and the data order (a function of seed and step) — is in a checkpoint, so a
 * resumed run takes bit for bit the steps the uninterrupted one would.
 */
import { valueAndGrads, type DiffTransformer } from '@diff-transformer/core';
import { GradientAccumulator } from './accumulation.js';
import { clipFactor, globalGradNorm } from './clipping.js';
import { PackedSequences, SequenceOrder, type SequenceSource } from './data/sequences.js';
import type { TokenizedData } from './data/tokens.js';

/** Training data given as sequence sources; bits per byte are then bits per token (there is no text). */
export interface SequenceData {
  readonly train: SequenceSource;
  readonly validation: SequenceSource;
  /** Ids the sequences use: the model's vocabulary must hold them. */
  readonly vocabSize: number;
  /** Names the data for a resumed run (e.g. the task, its parameters and seed). */
  readonly fingerprint: string;
}
import { DataError, DivergedError, ResumeError, TrainingConfigError } from './errors.js';
import { evaluate, type Evaluation } from './evaluation.js';
import { AdamW, resolveAdamW, type AdamWOptions, type HostMoments, type ResolvedAdamWOptions } from './optimizer.js';
import { learningRateAt, validateSchedule, type DecayKind } from './schedule.js';

export interface TrainingOptions {
  /** Steps of the whole run: the schedule decays over them. */
  readonly steps: number;
  /** Sequences per micro-batch. */
  readonly batchSize: number;
  /** Tokens per sequence (the context trained on); at most the model's maxPositions. */
  readonly seqLen: number;
  /** Micro-batches per step (default 1): a step sees batchSize × this many sequences. */
  readonly gradientAccumulation?: number;
  /** Peak learning rate. */
  readonly learningRate: number;
  /** Steps of linear warm-up (default 0). */
  readonly warmupSteps?: number;
  /** Decay after the warm-up (default cosine). */
  readonly decay?: DecayKind;
  /** The floor of the decay, as a fraction of the peak (default 0.1). */
  readonly minLearningRateRatio?: number;
  /** Global gradient-norm clipping threshold (default 1; 0 turns it off). */
  readonly clipNorm?: number;
  /** Seeds the data order (default 0). */
  readonly seed?: number;
  /** Evaluate every N steps (default 0: only when asked and at the last step). */
  readonly evalEvery?: number;
  /** Validation tokens per evaluation during training (default 65536; 0: the whole split). */
  readonly evalTokens?: number;
  readonly adamw?: AdamWOptions;
}

export interface ResolvedTrainingOptions {
  readonly steps: number;
  readonly batchSize: number;
  readonly seqLen: number;
  readonly gradientAccumulation: number;
  readonly learningRate: number;
  readonly warmupSteps: number;
  readonly decay: DecayKind;
  readonly minLearningRateRatio: number;
  readonly clipNorm: number;
  readonly seed: number;
  readonly evalEvery: number;
  readonly evalTokens: number;
  readonly adamw: ResolvedAdamWOptions;
}

export function resolveTrainingOptions(options: TrainingOptions): ResolvedTrainingOptions {
  const positiveInt = (name: string, x: unknown) => {
    if (!Number.isInteger(x) || (x as number) < 1) throw new TrainingConfigError(name, 'an integer ≥ 1', x);
  };
  const nonNegativeInt = (name: string, x: unknown) => {
    if (!Number.isInteger(x) || (x as number) < 0) throw new TrainingConfigError(name, 'an integer ≥ 0', x);
  };
  positiveInt('steps', options.steps);
  positiveInt('batchSize', options.batchSize);
  positiveInt('seqLen', options.seqLen);
  const resolved: ResolvedTrainingOptions = {
    steps: options.steps,
    batchSize: options.batchSize,
    seqLen: options.seqLen,
    gradientAccumulation: options.gradientAccumulation ?? 1,
    learningRate: options.learningRate,
    warmupSteps: options.warmupSteps ?? 0,
    decay: options.decay ?? 'cosine',
    minLearningRateRatio: options.minLearningRateRatio ?? 0.1,
    clipNorm: options.clipNorm ?? 1,
    seed: options.seed ?? 0,
    evalEvery: options.evalEvery ?? 0,
    evalTokens: options.evalTokens ?? 65536,
    adamw: resolveAdamW(options.adamw),
  };
  positiveInt('gradientAccumulation', resolved.gradientAccumulation);
  nonNegativeInt('seed', resolved.seed);
  nonNegativeInt('evalEvery', resolved.evalEvery);
  nonNegativeInt('evalTokens', resolved.evalTokens);
  if (!(resolved.clipNorm >= 0)) throw new TrainingConfigError('clipNorm', 'a number ≥ 0', resolved.clipNorm);
  validateSchedule({ ...resolved, totalSteps: resolved.steps });
  return resolved;
}

/** What one step did. Losses are in nats per token (natural log), as the model's loss is. */
export interface StepReport {
  readonly step: number;
  /** Mean training loss of the step's batch. */
  readonly loss: number;
  /** The same in bits per byte of training text. */
  readonly bitsPerByte: number;
  readonly learningRate: number;
  /** Global gradient norm before clipping. */
  readonly gradNorm: number;
  /** Tokens trained on so far, this step's included. */
  readonly tokens: number;
  readonly seconds: number;
  readonly tokensPerSecond: number;
}

export interface EvalReport extends Evaluation {
  readonly step: number;
  /** Tokens trained on when it was measured. */
  readonly trainedTokens: number;
}

/** What a checkpoint keeps of the trainer, besides the model and the optimiser's moments (JSON). */
export interface TrainerState {
  readonly format: typeof TRAINER_STATE_FORMAT;
  readonly version: 1;
  readonly step: number;
  readonly tokens: number;
  /** Seconds spent training so far, over every session of the run. */
  readonly seconds: number;
  readonly options: ResolvedTrainingOptions;
  readonly data: {
    readonly fingerprint: string;
    readonly trainTokens: number;
    readonly validationTokens: number;
    readonly trainTokensPerByte: number;
    readonly validationTokensPerByte: number;
  };
  readonly lastEvaluation: EvalReport | null;
  /** What the caller recorded about the run (the CLI: data source, tokenizer, size, attention). */
  readonly metadata: Readonly<Record<string, unknown>>;
}

export const TRAINER_STATE_FORMAT = 'diff-transformer-trainer';

export interface TrainCallbacks {
  /** After every step. A returned promise is awaited (a save, say) before the next step. */
  onStep?(report: StepReport): void | Promise<void>;
  /** After every evaluation (every evalEvery steps and at the last step). */
  onEval?(report: EvalReport): void | Promise<void>;
  /** Asked before each step: true stops the loop there (a Ctrl-C, a time limit). */
  shouldStop?(): boolean;
}

export class Trainer {
  readonly model: DiffTransformer;
  readonly options: ResolvedTrainingOptions;
  readonly data: TokenizedData | SequenceData;
  readonly optimizer: AdamW;
  /** Kept in the checkpoint as it is (JSON): what the caller wants to know when it resumes. */
  metadata: Record<string, unknown> = {};
  readonly #train: SequenceSource;
  readonly #validation: SequenceSource;
  readonly #order: SequenceOrder;
  #step = 0;
  #tokens = 0;
  #seconds = 0;
  #lastEvaluation: EvalReport | null = null;

  /**
   * A trainer for `model` on `data` (tokenized text, packed into sequences of seqLen, or sequence
   * sources of that length); it updates the model's parameters in place. Checks that the data and the
   * options fit the model before anything is allocated.
   */
  constructor(model: DiffTransformer, data: TokenizedData | SequenceData, options: TrainingOptions) {
    const resolved = resolveTrainingOptions(options);
    const { maxPositions, vocabSize } = model.config;
    if (resolved.seqLen > maxPositions) {
      throw new TrainingConfigError(
        'seqLen',
        `at most the model's maxPositions (${maxPositions})`,
        resolved.seqLen,
        'train on shorter sequences or use a model with more positions',
      );
    }
    if (data.vocabSize > vocabSize) {
      throw new TrainingConfigError(
        'vocabSize',
        `a model vocabulary that holds the tokenizer's ${data.vocabSize} ids`,
        vocabSize,
      );
    }
    const [train, validation] = [data.train, data.validation].map((split) =>
      'tokens' in split ? new PackedSequences(split.tokens, resolved.seqLen) : split,
    );
    for (const [name, source, split] of [
      ['training', train, data.train],
      ['validation', validation, data.validation],
    ] as const) {
      if (source.seqLen !== resolved.seqLen) {
        throw new TrainingConfigError('seqLen', `the ${name} sequences' length (${source.seqLen})`, resolved.seqLen);
      }
      if (source.count === 0) {
        throw new DataError(
          `the ${name} split`,
          'tokens' in split
            ? `${split.tokens.length} tokens are too few for one sequence of ${resolved.seqLen} + 1; ` +
                'give more text or a shorter --seq-len'
            : 'the sequence source holds no sequence',
        );
      }
    }
    this.model = model;
    this.options = resolved;
    this.data = data;
    this.#train = train;
    this.#validation = validation;
    this.#order = new SequenceOrder(train.count, resolved.seed);
    this.optimizer = new AdamW(model.parameters, resolved.adamw);
  }

  /** Steps taken so far. */
  get step(): number {
    return this.#step;
  }

  /** Tokens trained on so far. */
  get tokens(): number {
    return this.#tokens;
  }

  get tokensPerStep(): number {
    return this.options.batchSize * this.options.gradientAccumulation * this.options.seqLen;
  }

  get lastEvaluation(): EvalReport | null {
    return this.#lastEvaluation;
  }

  /** Training sequences available (one epoch). */
  get trainSequences(): number {
    return this.#train.count;
  }

  /** One optimiser step. */
  async trainStep(): Promise<StepReport> {
    const started = performance.now();
    const step = this.#step + 1;
    const { batchSize, gradientAccumulation } = this.options;
    const accumulator = new GradientAccumulator();
    let lossSum = 0;
    try {
      for (let micro = 0; micro < gradientAccumulation; micro++) {
        const first = ((step - 1) * gradientAccumulation + micro) * batchSize;
        const indices = Array.from({ length: batchSize }, (_, j) => this.#order.at(first + j));
        const { ids, targets } = this.#train.batch(indices);
        const { value, grads } = valueAndGrads(() => this.model.loss(ids, targets), this.model.parameters);
        accumulator.add(grads);
        try {
          lossSum += (await value.data())[0];
        } finally {
          value.dispose();
        }
      }
      const loss = lossSum / gradientAccumulation;
      if (!Number.isFinite(loss)) throw new DivergedError(step, 'training loss');
      const { grads, count } = accumulator.take();
      let gradNorm: number;
      let learningRate: number;
      try {
        gradNorm = await globalGradNorm(grads, 1 / count);
        const factor = clipFactor(gradNorm, this.options.clipNorm);
        if (!Number.isFinite(factor)) throw new DivergedError(step, 'gradient norm');
        learningRate = learningRateAt(step, { ...this.options, totalSteps: this.options.steps });
        this.optimizer.step(grads, learningRate, factor / count);
      } finally {
        for (const g of grads.values()) g.dispose();
      }
      this.#step = step;
      this.#tokens += this.tokensPerStep;
      const seconds = (performance.now() - started) / 1000;
      this.#seconds += seconds;
      return {
        step,
        loss,
        bitsPerByte: (loss / Math.LN2) * this.#tokensPerByte('train'),
        learningRate,
        gradNorm,
        tokens: this.#tokens,
        seconds,
        tokensPerSecond: this.tokensPerStep / seconds,
      };
    } finally {
      accumulator.dispose();
    }
  }

  /**
   * The validation figures now: over `maxTokens` tokens spread evenly over the split (default the
   * options' evalTokens; 0 for the whole split).
   */
  async evaluate(maxTokens = this.options.evalTokens): Promise<EvalReport> {
    const evaluation = await evaluate(this.model, this.#validation, {
      batchSize: this.options.batchSize,
      maxTokens: maxTokens > 0 ? maxTokens : undefined,
      tokensPerByte: this.#tokensPerByte('validation'),
    });
    this.#lastEvaluation = { ...evaluation, step: this.#step, trainedTokens: this.#tokens };
    return this.#lastEvaluation;
  }

  /**
   * Trains until step `until` (default: the options' steps), evaluating every evalEvery steps and at
   * the last step. Returns the last step's report (null when no step was left to take).
   */
  async train(callbacks: TrainCallbacks = {}, until = this.options.steps): Promise<StepReport | null> {
    let last: StepReport | null = null;
    while (this.#step < until) {
      if (callbacks.shouldStop?.()) break;
      last = await this.trainStep();
      await callbacks.onStep?.(last);
      const { evalEvery, steps } = this.options;
      if ((evalEvery > 0 && last.step % evalEvery === 0) || last.step === steps) {
        const report = await this.evaluate();
        await callbacks.onEval?.(report);
      }
    }
    return last;
  }

  /** The trainer's part of a checkpoint (JSON-safe). */
  state(): TrainerState {
    return {
      format: TRAINER_STATE_FORMAT,
      version: 1,
      step: this.#step,
      tokens: this.#tokens,
      seconds: this.#seconds,
      options: this.options,
      data: {
        fingerprint: this.data.fingerprint,
        trainTokens: this.#splitTokens('train'),
        validationTokens: this.#splitTokens('validation'),
        trainTokensPerByte: this.#tokensPerByte('train'),
        validationTokensPerByte: this.#tokensPerByte('validation'),
      },
      lastEvaluation: this.#lastEvaluation,
      metadata: this.metadata,
    };
  }

  /**
   * Continues from a checkpoint's state and moments: the data must be the same (its fingerprint), the
   * step count and moments are restored exactly. `dir` names the checkpoint in messages.
   */
  restore(state: TrainerState, moments: ReadonlyMap<string, HostMoments>, dir = 'checkpoint'): void {
    if (state.data.fingerprint !== this.data.fingerprint) {
      throw new ResumeError(
        dir,
        `it was trained on other data (fingerprint ${state.data.fingerprint}, ${state.data.trainTokens} training ` +
          `tokens) than given now (${this.data.fingerprint}, ${this.#splitTokens('train')}); ` +
          'resume with the same --data and tokenizer',
      );
    }
    this.optimizer.loadHostState({ step: state.step, moments });
    this.#step = state.step;
    this.#tokens = state.tokens;
    this.#seconds = state.seconds;
    this.#lastEvaluation = state.lastEvaluation;
    this.metadata = { ...state.metadata };
  }

  /** Seconds spent in steps, over every session of the run. */
  get seconds(): number {
    return this.#seconds;
  }

  /** Frees the optimiser's moments (the model stays the caller's). */
  dispose(): void {
    this.optimizer.dispose();
  }

  #tokensPerByte(split: 'train' | 'validation'): number {
    const stream = this.data[split];
    if (!('tokens' in stream)) return 1;
    return stream.bytes > 0 ? stream.tokens.length / stream.bytes : 1;
  }

  #splitTokens(split: 'train' | 'validation'): number {
    const stream = this.data[split];
    return 'tokens' in stream ? stream.tokens.length : stream.count * stream.seqLen;
  }
}
