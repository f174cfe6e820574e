/**
 * One training run: a model of a variant, trained by the train package's Trainer with a seed (the
 * initialisation and the data order), evaluated during training and at the end, with DIFF V1's λ read
 * every few steps. A run is kept in this process (other experiments reuse it: the ablations reuse the
 * lm runs, attention-noise the retrieval models, outliers the lm models) and in OUT/runs/<key>/ (its
 * results and the model folder), so a later command with the same settings reuses it instead of
 * training again; the results say which runs were reused.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type AttentionKind,
  type Backend,
  DiffTransformer,
  type HostTensor,
  type ModelConfig,
  parameterCount,
  resolveConfig,
} from '@diff-transformer/core';
import { readModel, saveModel } from '@diff-transformer/core/node';
import {
  matchedModel,
  type PresetModel,
  type SequenceData,
  type TokenizedData,
  Trainer,
  trainingCurves,
} from '@diff-transformer/train';
import type { RunLength } from './scale.js';
import type { ExperimentScale } from './scale.js';

/** The models compared: the paper's three and DIFF V1's ablations (Table 6). */
export const VARIANTS = [
  'differential',
  'differential-v2',
  'standard',
  'no-subln',
  'lambda-init-0.8',
  'scalar-lambda',
] as const;
export type Variant = (typeof VARIANTS)[number];

export const VARIANT_LABELS: Readonly<Record<Variant, string>> = {
  differential: 'DIFF V1',
  'differential-v2': 'DIFF V2',
  standard: 'baseline',
  'no-subln': 'DIFF − GroupNorm',
  'lambda-init-0.8': 'DIFF, λinit 0.8',
  'scalar-lambda': 'DIFF, scalar λ',
};

/** The config of a variant, from the DIFF side of a size (train's parameter matching). */
export function variantConfig(model: PresetModel, variant: Variant, vocabSize: number): ModelConfig {
  const attention: AttentionKind =
    variant === 'differential-v2' ? 'differential-v2' : variant === 'standard' ? 'standard' : 'differential';
  const base = matchedModel({ ...model, vocabSize: model.vocabSize ?? vocabSize }, attention);
  switch (variant) {
    case 'no-subln':
      return resolveConfig({ ...base, subLayerNorm: null });
    case 'lambda-init-0.8':
      return resolveConfig({ ...base, lambdaInit: 0.8 });
    case 'scalar-lambda':
      return resolveConfig({ ...base, lambdaParameterization: 'scalar' });
    default:
      return resolveConfig(base);
  }
}

export interface ExperimentContext {
  readonly backend: Backend;
  readonly scale: ExperimentScale;
  /** Seeds per configuration (the scale's unless --seeds). */
  readonly seeds: number;
  /** The output folder: JSON, figures, sections; runs/ holds the trained models. */
  readonly out: string;
  /** Train every run again even where OUT/runs holds it. */
  readonly fresh: boolean;
  /** A progress line (stderr in the CLI). */
  readonly log: (line: string) => void;
  /** What this process has already made. */
  readonly memo: { readonly runs: Map<string, TrainedRun>; brown?: Promise<TokenizedData> };
}

export interface RunSpec {
  readonly experiment: 'lm' | 'retrieval';
  readonly size: string;
  readonly variant: Variant;
  readonly seed: number;
  readonly config: ModelConfig;
  readonly training: RunLength;
  /** Validation tokens (lm) or sequences × length (retrieval) of the final evaluation; 0: everything. */
  readonly finalEvalTokens: number;
  /** Read λ every N steps (DIFF V1 only); 0: never. */
  readonly lambdaEvery: number;
}

export interface RunResult {
  readonly key: string;
  readonly experiment: 'lm' | 'retrieval';
  readonly size: string;
  readonly variant: Variant;
  readonly seed: number;
  readonly attention: AttentionKind;
  readonly parameters: number;
  readonly config: ModelConfig;
  readonly steps: number;
  readonly tokensPerStep: number;
  /** Seconds the training steps took (evaluations excluded). */
  readonly trainSeconds: number;
  /** Seconds the whole run took: steps, evaluations, λ reads. */
  readonly seconds: number;
  /** CPU seconds the process spent on it, all threads (what the run costs, whatever else the machine runs). */
  readonly cpuSeconds: number;
  /** Taken from OUT/runs (trained by an earlier command) rather than trained by this one. */
  readonly reused: boolean;
  readonly backend: string;
  /** Training loss (nats per token), averaged over buckets of steps. */
  readonly trainCurve: ReadonlyArray<{ readonly step: number; readonly loss: number }>;
  readonly evaluations: ReadonlyArray<{
    readonly step: number;
    readonly tokens: number;
    readonly loss: number;
    readonly bitsPerByte: number;
  }>;
  readonly final: { readonly loss: number; readonly bitsPerByte: number; readonly tokens: number };
  /** DIFF V1: λ of every layer at step 0 and every lambdaEvery steps. */
  readonly lambda: ReadonlyArray<{ readonly step: number; readonly values: readonly number[] }>;
}

export interface TrainedRun {
  readonly result: RunResult;
  readonly parameters: Map<string, HostTensor>;
}

/** Trains (or reuses) one run on `data`, whose fingerprint is part of the run's key. */
export async function trainRun(
  ctx: ExperimentContext,
  spec: RunSpec,
  data: TokenizedData | SequenceData,
): Promise<TrainedRun> {
  const key = runKey(spec, data.fingerprint, ctx.backend.name);
  const memo = ctx.memo.runs.get(key);
  if (memo) return memo;
  const dir = join(ctx.out, 'runs', key);
  const label = `${spec.experiment} ${spec.size} ${VARIANT_LABELS[spec.variant]} seed ${spec.seed}`;
  if (!ctx.fresh) {
    const cached = await readCachedRun(dir);
    if (cached) {
      ctx.log(`${label}: reused from ${dir}`);
      const run = { result: { ...cached.result, reused: true }, parameters: cached.parameters };
      ctx.memo.runs.set(key, run);
      return run;
    }
  }
  const run = await train(ctx, spec, data, key, label, dir);
  // Written last: a run.json means the model folder beside it is whole.
  await writeFile(join(dir, 'run.json'), `${JSON.stringify(run.result, null, 1)}\n`);
  ctx.memo.runs.set(key, run);
  return run;
}

async function train(
  ctx: ExperimentContext,
  spec: RunSpec,
  data: TokenizedData | SequenceData,
  key: string,
  label: string,
  dir: string,
): Promise<TrainedRun> {
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const t = spec.training;
  const model = DiffTransformer.create(spec.config, { seed: spec.seed, backend: ctx.backend });
  const parameters = parameterCount(spec.config);
  let trainer: Trainer | null = null;
  try {
    trainer = new Trainer(model, data, {
      steps: t.steps,
      batchSize: t.batchSize,
      seqLen: t.seqLen,
      learningRate: t.learningRate,
      warmupSteps: t.warmupSteps,
      decay: 'cosine',
      evalEvery: t.evalEvery,
      evalTokens: t.evalTokens,
      seed: spec.seed,
      adamw: t.weightDecay === undefined ? {} : { weightDecay: t.weightDecay },
    });
    ctx.log(
      `${label}: ${t.steps} steps of ${trainer.tokensPerStep} tokens, ${parameters.toLocaleString('en-US')} parameters`,
    );
    const traceLambda = spec.lambdaEvery > 0 && spec.config.attention === 'differential';
    const lambda: Array<{ step: number; values: number[] }> = [];
    if (traceLambda) lambda.push({ step: 0, values: await model.lambdaValues() });
    const steps: Array<{ step: number; loss: number }> = [];
    const evaluations: Array<{ step: number; tokens: number; loss: number; bitsPerByte: number }> = [];
    const every = Math.max(1, Math.round(t.steps / 4));
    const active = trainer;
    await active.train({
      onStep: async (report) => {
        steps.push({ step: report.step, loss: report.loss });
        if (traceLambda && report.step % spec.lambdaEvery === 0) {
          lambda.push({ step: report.step, values: await model.lambdaValues() });
        }
        if (report.step % every === 0 && report.step < t.steps) {
          ctx.log(`${label}: step ${report.step}/${t.steps}, loss ${report.loss.toFixed(3)} nats/token`);
        }
      },
      onEval: (report) => {
        evaluations.push({
          step: report.step,
          tokens: report.trainedTokens,
          loss: report.loss,
          bitsPerByte: report.bitsPerByte,
        });
      },
    });
    const final = await active.evaluate(spec.finalEvalTokens);
    const [curve] = trainingCurves(steps, [], 100, 'loss');
    const result: RunResult = {
      key,
      experiment: spec.experiment,
      size: spec.size,
      variant: spec.variant,
      seed: spec.seed,
      attention: spec.config.attention,
      parameters,
      config: spec.config,
      steps: active.step,
      tokensPerStep: active.tokensPerStep,
      trainSeconds: active.seconds,
      seconds: (performance.now() - started) / 1000,
      cpuSeconds: cpuSecondsSince(cpuStarted),
      reused: false,
      backend: ctx.backend.name,
      trainCurve: curve.points.map((p) => ({ step: p.step, loss: p.value })),
      evaluations,
      final: { loss: final.loss, bitsPerByte: final.bitsPerByte, tokens: final.tokens },
      lambda,
    };
    ctx.log(
      `${label}: done in ${result.seconds.toFixed(0)} s (${result.trainSeconds.toFixed(0)} s of steps, ` +
        `${result.cpuSeconds.toFixed(0)} CPU s), ` +
        `validation loss ${final.loss.toFixed(4)} nats/token`,
    );
    await mkdir(dir, { recursive: true });
    await saveModel(model, join(dir, 'model'));
    return { result, parameters: await model.hostParameters() };
  } finally {
    trainer?.dispose();
    model.dispose();
  }
}

export function cpuSecondsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

async function readCachedRun(dir: string): Promise<TrainedRun | null> {
  let text: string;
  try {
    text = await readFile(join(dir, 'run.json'), 'utf8');
  } catch {
    return null;
  }
  const result = JSON.parse(text) as RunResult;
  const contents = await readModel(join(dir, 'model'));
  return { result, parameters: contents.parameters };
}

/** A readable, unique name for a run's settings: what, which seed, and a hash of everything that matters. */
export function runKey(spec: RunSpec, dataFingerprint: string, backend: string): string {
  const identity = JSON.stringify({
    config: spec.config,
    training: spec.training,
    finalEvalTokens: spec.finalEvalTokens,
    lambdaEvery: spec.lambdaEvery,
    seed: spec.seed,
    data: dataFingerprint,
    backend,
  });
  return `${spec.experiment}-${spec.size}-${spec.variant}-s${spec.seed}-${fnv1a(identity)}`;
}

function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}
