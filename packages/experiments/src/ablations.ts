/**
 * ablations: DIFF V1 without its per-head norm (GroupNorm in the paper), with λinit fixed at 0.8 instead
 * of the depth schedule, and with a scalar λ instead of the re-parameterisation, against DIFF V1 and the
 * baseline (the paper's Table 6 in miniature), all trained as the lm experiment trains its size (DIFF
 * and the baseline are the lm runs themselves); λ of every layer traced over training (a figure per
 * DIFF variant).
 */
import { type ChartSeries, lossCurveSvg } from '@diff-transformer/train';
import { count, interval, meanStd, pValue, signed, verdict } from './format.js';
import { lmRun } from './lm.js';
import { writeFigure } from './output.js';
import { type ExperimentContext, type RunResult, VARIANT_LABELS, type Variant } from './runs.js';
import { type PairedTest, pairedTTest, type Spread, spread } from './stats.js';

export const ABLATION_VARIANTS = [
  'standard',
  'differential',
  'no-subln',
  'lambda-init-0.8',
  'scalar-lambda',
] as const satisfies readonly Variant[];

/** What each variant changes, as the report says it. */
export const ABLATION_DESCRIPTIONS: Readonly<Record<(typeof ABLATION_VARIANTS)[number], string>> = {
  standard: 'the baseline Transformer',
  differential: 'DIFF V1 as in the paper',
  'no-subln': 'without the per-head RMSNorm (subLayerNorm null; × (1 − λinit) kept)',
  'lambda-init-0.8': 'λinit fixed at 0.8 in every layer instead of 0.8 − 0.6·exp(−0.3·depth)',
  'scalar-lambda': 'λ learned as one number per layer instead of exp(λq1·λk1) − exp(λq2·λk2) + λinit',
};

export interface AblationsResult {
  readonly experiment: 'ablations';
  readonly scale: string;
  readonly seeds: number;
  readonly size: string;
  readonly summary: ReadonlyArray<{
    readonly variant: Variant;
    readonly parameters: number;
    readonly bitsPerByte: Spread;
  }>;
  /** Each variant − DIFF V1 in bits per byte, paired by seed. */
  readonly comparisons: ReadonlyArray<{ readonly variant: Variant; readonly test: PairedTest }>;
  /** λ per layer over training, per DIFF variant, over seeds. */
  readonly lambdaTraces: ReadonlyArray<{
    readonly variant: Variant;
    readonly points: ReadonlyArray<{ readonly step: number; readonly layers: readonly Spread[] }>;
  }>;
  readonly runs: readonly RunResult[];
  readonly figures: readonly string[];
  readonly seconds: number;
}

export async function runAblations(ctx: ExperimentContext): Promise<AblationsResult> {
  const started = performance.now();
  const size = ctx.scale.lm.sizes.find((s) => s.name === ctx.scale.ablations.size)!;
  const runs = new Map<Variant, RunResult[]>(ABLATION_VARIANTS.map((v) => [v, []]));
  for (let seed = 0; seed < ctx.seeds; seed++) {
    for (const variant of ABLATION_VARIANTS) runs.get(variant)!.push((await lmRun(ctx, size, variant, seed)).result);
  }
  const finals = (variant: Variant) => runs.get(variant)!.map((r) => r.final.bitsPerByte);
  const summary = ABLATION_VARIANTS.map((variant) => ({
    variant,
    parameters: runs.get(variant)![0].parameters,
    bitsPerByte: spread(finals(variant)),
  }));
  const comparisons = ABLATION_VARIANTS.filter((v) => v !== 'differential').map((variant) => ({
    variant,
    test: pairedTTest(finals(variant), finals('differential')),
  }));
  const lambdaTraces = ABLATION_VARIANTS.filter((v) => runs.get(v)![0].lambda.length > 0).map((variant) => {
    const traced = runs.get(variant)!;
    return {
      variant,
      points: traced[0].lambda.map((point, i) => ({
        step: point.step,
        layers: point.values.map((_, layer) => spread(traced.map((r) => r.lambda[i].values[layer]))),
      })),
    };
  });
  const figures: string[] = [];
  for (const trace of lambdaTraces) {
    const layers = trace.points[0].layers.length;
    const series: ChartSeries[] = Array.from({ length: layers }, (_, layer) => ({
      name: `layer ${layer}`,
      points: trace.points.map((p) => ({
        step: p.step,
        value: p.layers[layer].mean,
        low: p.layers[layer].mean - p.layers[layer].std,
        high: p.layers[layer].mean + p.layers[layer].std,
      })),
    }));
    const svg = await lossCurveSvg(series, {
      title: `λ over training, ${VARIANT_LABELS[trace.variant]}, ${size.name} (mean ± std over ${ctx.seeds} seeds)`,
      valueTitle: 'λ',
      legendTitle: 'layer',
    });
    figures.push(await writeFigure(ctx.out, `ablations-lambda-${trace.variant}.svg`, svg));
  }
  return {
    experiment: 'ablations',
    scale: ctx.scale.name,
    seeds: ctx.seeds,
    size: size.name,
    summary,
    comparisons,
    lambdaTraces,
    runs: [...runs.values()].flat(),
    figures,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The ablations section of the report, from the JSON. */
export function renderAblations(r: AblationsResult): string {
  const lines: string[] = ['## Ablations (`ablations`)', ''];
  lines.push(
    `The ${r.size} size, trained exactly as in \`lm\` (DIFF V1 and the baseline are the lm runs), ${r.seeds} seeds. ` +
      'Final validation loss in bits per byte (lower is better), and each variant − DIFF V1 paired by seed:',
    '',
  );
  lines.push(
    '| model | what changes | parameters | bits per byte | − DIFF V1 | 95 % CI | p | verdict |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const s of r.summary) {
    const c = r.comparisons.find((x) => x.variant === s.variant);
    const label = VARIANT_LABELS[s.variant];
    const description = ABLATION_DESCRIPTIONS[s.variant as (typeof ABLATION_VARIANTS)[number]];
    lines.push(
      `| ${label} | ${description} | ${count(s.parameters)} | ${meanStd(s.bitsPerByte, 4)} | ` +
        (c
          ? `${signed(c.test.meanDifference, 4)} | ${interval(c.test, 4)} | ${pValue(c.test.p)} | ` +
            `${verdict(c.test, 'lower', label, 'DIFF V1')} |`
          : '— | — | — | — |'),
    );
  }
  lines.push('', 'λ at the end of training, per layer (mean ± std over seeds):', '');
  for (const t of r.lambdaTraces) {
    const last = t.points[t.points.length - 1];
    lines.push(
      `- ${VARIANT_LABELS[t.variant]}, step ${count(last.step)}: ` +
        last.layers.map((l, i) => `layer ${i} ${meanStd(l, 3)}`).join(', '),
    );
  }
  lines.push('');
  for (const path of r.figures) lines.push(`![λ over training](${path})`, '');
  return `${lines.join('\n')}\n`;
}
