/**
 * retrieval: multi-needle retrieval (./retrieval-task.ts) learned from scratch by DIFF V1 and its
 * parameter-matched baseline, every seed, at the scale's training context; accuracy (the answer is the
 * arg max over the whole vocabulary) at the training length and at longer contexts with the same N
 * needles among more distractors (the paper's Table 2 and Fig. 5 in miniature), with a paired t-test.
 */
import { DiffTransformer, type HostTensor, type ModelConfig } from '@diff-transformer/core';
import { type ChartSeries, lossCurveSvg, type SequenceData } from '@diff-transformer/train';
import { count, fixed, interval, meanStd, pValue, signed, verdict } from './format.js';
import { writeFigure } from './output.js';
import { RetrievalSequences, type RetrievalTaskOptions, retrievalVocabSize } from './retrieval-task.js';
import {
  type ExperimentContext,
  type RunResult,
  type TrainedRun,
  trainRun,
  VARIANT_LABELS,
  type Variant,
  variantConfig,
} from './runs.js';
import type { RunLength } from './scale.js';
import { type PairedTest, pairedTTest, type Spread, spread } from './stats.js';

export const RETRIEVAL_VARIANTS = ['differential', 'standard'] as const satisfies readonly Variant[];

/** Seeds of the fixed example sets (the same for every model and training seed). */
const TRAIN_SET = 1;
const VALIDATION_SET = 2;
const TEST_SET = 3;

export interface RetrievalResult {
  readonly experiment: 'retrieval';
  readonly scale: string;
  readonly seeds: number;
  readonly task: RetrievalTaskOptions & {
    readonly vocabSize: number;
    readonly trainLength: number;
    readonly testLengths: readonly number[];
    readonly testSequences: number;
    /** 1 / values: guessing a value uniformly. */
    readonly chance: number;
  };
  readonly training: RunLength & { readonly schedule: 'cosine' };
  readonly parameters: Readonly<Record<(typeof RETRIEVAL_VARIANTS)[number], number>>;
  readonly accuracy: ReadonlyArray<{
    readonly variant: Variant;
    readonly seed: number;
    readonly byLength: ReadonlyArray<{
      readonly length: number;
      readonly accuracy: number;
      readonly correct: number;
      readonly answers: number;
    }>;
  }>;
  readonly summary: ReadonlyArray<{ readonly variant: Variant; readonly length: number; readonly accuracy: Spread }>;
  /** DIFF − baseline accuracy per length, paired by seed. */
  readonly comparisons: ReadonlyArray<{ readonly length: number; readonly test: PairedTest }>;
  readonly runs: readonly RunResult[];
  readonly figures: { readonly accuracy: string };
  readonly seconds: number;
}

/** The trained retrieval models by variant, one per seed (trained or reused). */
export async function retrievalRuns(ctx: ExperimentContext): Promise<Map<Variant, TrainedRun[]>> {
  const { retrieval } = ctx.scale;
  const t = retrieval.training;
  const data: SequenceData = {
    train: new RetrievalSequences(retrieval.task, t.seqLen, t.steps * t.batchSize, TRAIN_SET),
    validation: new RetrievalSequences(
      retrieval.task,
      t.seqLen,
      Math.max(1, Math.floor(t.evalTokens / t.seqLen)),
      VALIDATION_SET,
    ),
    vocabSize: retrievalVocabSize(retrieval.task),
    fingerprint: `retrieval ${JSON.stringify(retrieval.task)} T${t.seqLen} n${t.steps * t.batchSize}`,
  };
  const out = new Map<Variant, TrainedRun[]>(RETRIEVAL_VARIANTS.map((v) => [v, []]));
  for (let seed = 0; seed < ctx.seeds; seed++) {
    for (const variant of RETRIEVAL_VARIANTS) {
      const run = await trainRun(
        ctx,
        {
          experiment: 'retrieval',
          size: `d${retrieval.model.hiddenSize}-L${retrieval.model.numLayers}`,
          variant,
          seed,
          config: variantConfig(retrieval.model, variant, data.vocabSize),
          training: t,
          finalEvalTokens: 0,
          lambdaEvery: 0,
        },
        data,
      );
      out.get(variant)!.push(run);
    }
  }
  return out;
}

/** The test examples at one length: the same for every model. */
export function retrievalTestSet(ctx: ExperimentContext, length: number, sequences: number): RetrievalSequences {
  return new RetrievalSequences(ctx.scale.retrieval.task, length, sequences, TEST_SET * 100_003 + length);
}

export async function runRetrieval(ctx: ExperimentContext): Promise<RetrievalResult> {
  const started = performance.now();
  const { retrieval } = ctx.scale;
  const t = retrieval.training;
  const runs = await retrievalRuns(ctx);
  const lengths = retrieval.testMultiples.map((m) => m * t.seqLen);
  const accuracy: RetrievalResult['accuracy'][number][] = [];
  for (const variant of RETRIEVAL_VARIANTS) {
    for (const [seed, run] of runs.get(variant)!.entries()) {
      const byLength = [];
      for (const length of lengths) {
        const score = await measureAccuracy(
          ctx,
          run.result.config,
          run.parameters,
          retrievalTestSet(ctx, length, retrieval.testSequences),
          Math.max(1, Math.floor((t.batchSize * t.seqLen) / length)),
        );
        byLength.push({ length, ...score, accuracy: score.correct / score.answers });
      }
      ctx.log(
        `retrieval ${VARIANT_LABELS[variant]} seed ${seed}: accuracy ` +
          byLength.map((b) => `${(100 * b.accuracy).toFixed(1)} % at ${b.length}`).join(', '),
      );
      accuracy.push({ variant, seed, byLength });
    }
  }
  const values = (variant: Variant, length: number) =>
    accuracy.filter((a) => a.variant === variant).map((a) => a.byLength.find((b) => b.length === length)!.accuracy);
  const summary = RETRIEVAL_VARIANTS.flatMap((variant) =>
    lengths.map((length) => ({ variant, length, accuracy: spread(values(variant, length)) })),
  );
  const comparisons = lengths.map((length) => ({
    length,
    test: pairedTTest(values('differential', length), values('standard', length)),
  }));
  const chance = 1 / retrieval.task.values;
  const series: ChartSeries[] = [
    ...RETRIEVAL_VARIANTS.map((variant) => ({
      name: VARIANT_LABELS[variant],
      markers: true,
      points: summary
        .filter((s) => s.variant === variant)
        .map((s) => ({
          step: s.length,
          value: s.accuracy.mean,
          // An accuracy lies in [0, 1]; so does its bar.
          low: Math.max(0, s.accuracy.mean - s.accuracy.std),
          high: Math.min(1, s.accuracy.mean + s.accuracy.std),
        })),
    })),
    { name: 'chance', points: lengths.map((length) => ({ step: length, value: chance })) },
  ];
  const figure = await writeFigure(
    ctx.out,
    'retrieval-accuracy.svg',
    await lossCurveSvg(series, {
      title: `Multi-needle retrieval, trained at ${t.seqLen} tokens (mean ± std over ${ctx.seeds} seeds)`,
      stepTitle: 'context length (tokens)',
      logStep: true,
      valueTitle: 'accuracy (fraction of queries)',
      legendTitle: 'model',
      valueZero: true,
    }),
  );
  return {
    experiment: 'retrieval',
    scale: ctx.scale.name,
    seeds: ctx.seeds,
    task: {
      ...retrieval.task,
      vocabSize: retrievalVocabSize(retrieval.task),
      trainLength: t.seqLen,
      testLengths: lengths,
      testSequences: retrieval.testSequences,
      chance,
    },
    training: { ...t, schedule: 'cosine' },
    parameters: {
      differential: runs.get('differential')![0].result.parameters,
      standard: runs.get('standard')![0].result.parameters,
    },
    accuracy,
    summary,
    comparisons,
    runs: [...runs.values()].flat().map((r) => r.result),
    figures: { accuracy: figure },
    seconds: (performance.now() - started) / 1000,
  };
}

/** Queries answered right (arg max of the logits at the key after QUERY is the needle's value). */
async function measureAccuracy(
  ctx: ExperimentContext,
  config: ModelConfig,
  parameters: ReadonlyMap<string, HostTensor>,
  set: RetrievalSequences,
  batch: number,
): Promise<{ correct: number; answers: number }> {
  const model = DiffTransformer.fromParameters(config, parameters, { backend: ctx.backend });
  let correct = 0;
  let answers = 0;
  try {
    for (let start = 0; start < set.count; start += batch) {
      const examples = Array.from({ length: Math.min(batch, set.count - start) }, (_, i) => set.example(start + i));
      const logits = model.forward(examples.map((e) => e.ids));
      let values: Float32Array;
      try {
        values = await logits.dataFloat();
      } finally {
        logits.dispose();
      }
      const vocab = config.vocabSize;
      examples.forEach((example, b) => {
        for (const query of example.queries) {
          const row = (b * set.seqLen + query.position) * vocab;
          let best = 0;
          for (let v = 1; v < vocab; v++) if (values[row + v] > values[row + best]) best = v;
          if (best === example.targets[query.position]) correct++;
          answers++;
        }
      });
    }
  } finally {
    model.dispose();
  }
  return { correct, answers };
}

/** The retrieval section of the report, from the JSON. */
export function renderRetrieval(r: RetrievalResult): string {
  const t = r.training;
  const lines: string[] = ['## Multi-needle retrieval (`retrieval`)', ''];
  lines.push(
    `Synthetic sequences generated in code from fixed seeds: ${r.task.needles} key–value needles ` +
      `("NEEDLE key value") at random places among distractor tokens, then ${r.task.queries} of the keys queried ` +
      `("QUERY key" → value); the loss and the accuracy count only the answers. ${r.task.keys} keys, ` +
      `${r.task.values} values, ${r.task.distractors} distractor tokens (vocabulary ${r.task.vocabSize}); ` +
      `guessing scores ${fixed(r.task.chance, 4)}. Trained at ${count(r.task.trainLength)} tokens for ` +
      `${count(t.steps)} steps of ${count(t.batchSize)} sequences (AdamW at ${t.learningRate}, ` +
      `${count(t.warmupSteps)} ` +
      `warm-up steps, ${t.schedule} decay); tested on ${count(r.task.testSequences)} fresh sequences per length at ` +
      `${r.task.testLengths.map(count).join(', ')} tokens. Parameters: DIFF V1 ${count(r.parameters.differential)}, ` +
      `baseline ${count(r.parameters.standard)}.`,
    '',
  );
  lines.push('Accuracy (fraction of queries answered; mean ± std over seeds; higher is better):', '');
  lines.push(
    `| model | ${r.task.testLengths.map((l) => `${count(l)} tokens`).join(' | ')} |`,
    `| --- | ${r.task.testLengths.map(() => '---').join(' | ')} |`,
  );
  for (const variant of RETRIEVAL_VARIANTS) {
    const cells = r.task.testLengths.map((length) =>
      meanStd(r.summary.find((s) => s.variant === variant && s.length === length)!.accuracy, 3),
    );
    lines.push(`| ${VARIANT_LABELS[variant]} | ${cells.join(' | ')} |`);
  }
  lines.push('', 'DIFF − baseline accuracy, paired by seed (paired t-test, 95 % confidence interval):', '');
  lines.push('| context | mean difference | 95 % CI | t | p | verdict |', '| --- | --- | --- | --- | --- | --- |');
  for (const c of r.comparisons) {
    lines.push(
      `| ${count(c.length)} | ${signed(c.test.meanDifference, 3)} | ${interval(c.test, 3)} | ` +
        `${signed(c.test.t, 2)} | ` +
        `${pValue(c.test.p)} | ${verdict(c.test, 'higher', 'DIFF V1', 'the baseline')} |`,
    );
  }
  lines.push('', `![Retrieval accuracy against context length](${r.figures.accuracy})`, '');
  return `${lines.join('\n')}\n`;
}
