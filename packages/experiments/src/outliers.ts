/**
 * outliers: activation outliers of the lm models (the paper's Table 5 metric): the largest and the
 * median magnitude of the attention logits (the scaled scores before the softmax; both maps for DIFF)
 * and of the hidden states (every layer's output, the residual stream), over validation sequences.
 * A large top-1 / median ratio is an outlier. Measured through the float64 reference model's hooks
 * (onAttention's logits and onHiddenState), never in the fused kernels.
 */
import * as reference from '@diff-transformer/reference';
import { PackedSequences, evenlySpaced } from '@diff-transformer/train';
import { count, interval, meanStd, pValue, signed, verdict } from './format.js';
import { brownData, LM_VARIANTS, lmRun } from './lm.js';
import { type ExperimentContext, VARIANT_LABELS, type Variant } from './runs.js';
import { magnitudeStatistics, type PairedTest, pairedTTest, type Spread, spread } from './stats.js';

export interface ActivationStatistics {
  readonly top1: number;
  readonly top10: number;
  readonly median: number;
  /** top1 / median. */
  readonly ratio: number;
  readonly count: number;
}

export interface OutliersResult {
  readonly experiment: 'outliers';
  readonly scale: string;
  readonly seeds: number;
  readonly size: string;
  readonly path: string;
  readonly sequences: number;
  readonly seqLen: number;
  readonly perModel: ReadonlyArray<{
    readonly variant: Variant;
    readonly seed: number;
    readonly attentionLogits: ActivationStatistics;
    readonly hiddenStates: ActivationStatistics;
  }>;
  readonly summary: ReadonlyArray<{
    readonly variant: Variant;
    readonly attentionLogits: Readonly<Record<'top1' | 'top10' | 'median' | 'ratio', Spread>>;
    readonly hiddenStates: Readonly<Record<'top1' | 'top10' | 'median' | 'ratio', Spread>>;
  }>;
  /** DIFF − baseline top-1/median ratios, paired by seed. */
  readonly comparisons: ReadonlyArray<{
    readonly variant: Variant;
    readonly activation: 'attention logits' | 'hidden states';
    readonly test: PairedTest;
  }>;
  readonly seconds: number;
}

export async function runOutliers(ctx: ExperimentContext): Promise<OutliersResult> {
  const started = performance.now();
  const { outliers, lm } = ctx.scale;
  const size = lm.sizes.find((s) => s.name === outliers.size)!;
  const data = await brownData(ctx);
  const packed = new PackedSequences(data.validation.tokens, outliers.seqLen);
  const { ids } = packed.batch(evenlySpaced(packed.count, outliers.sequences));
  const perModel: OutliersResult['perModel'][number][] = [];
  for (let seed = 0; seed < ctx.seeds; seed++) {
    for (const variant of LM_VARIANTS) {
      const run = await lmRun(ctx, size, variant, seed);
      ctx.log(
        `outliers ${size.name} ${VARIANT_LABELS[variant]} seed ${seed}: ${ids.length} sequences (float64 reference)`,
      );
      const logits: Float64Array[] = [];
      const hidden: Float64Array[] = [];
      for (const row of ids) {
        reference.modelLogits(run.result.config, run.parameters, [row], {
          onAttention: (o) => {
            for (const l of o.logits) logits.push(l.data);
          },
          onHiddenState: (_depth, h) => hidden.push(h.data),
        });
      }
      perModel.push({ variant, seed, attentionLogits: statistics(logits), hiddenStates: statistics(hidden) });
    }
  }
  const fields = ['top1', 'top10', 'median', 'ratio'] as const;
  const summary = LM_VARIANTS.map((variant) => {
    const models = perModel.filter((m) => m.variant === variant);
    const of = (which: 'attentionLogits' | 'hiddenStates') =>
      Object.fromEntries(fields.map((f) => [f, spread(models.map((m) => m[which][f]))])) as Record<
        (typeof fields)[number],
        Spread
      >;
    return { variant, attentionLogits: of('attentionLogits'), hiddenStates: of('hiddenStates') };
  });
  const ratios = (variant: Variant, which: 'attentionLogits' | 'hiddenStates') =>
    perModel.filter((m) => m.variant === variant).map((m) => m[which].ratio);
  const comparisons = (['differential', 'differential-v2'] as const).flatMap((variant) =>
    (
      [
        ['attention logits', 'attentionLogits'],
        ['hidden states', 'hiddenStates'],
      ] as const
    ).map(([activation, which]) => ({
      variant,
      activation,
      test: pairedTTest(ratios(variant, which), ratios('standard', which)),
    })),
  );
  return {
    experiment: 'outliers',
    scale: ctx.scale.name,
    seeds: ctx.seeds,
    size: size.name,
    path: 'the float64 reference model (reference.modelLogits with its onAttention and onHiddenState hooks)',
    sequences: ids.length,
    seqLen: outliers.seqLen,
    perModel,
    summary,
    comparisons,
    seconds: (performance.now() - started) / 1000,
  };
}

function statistics(parts: readonly Float64Array[]): ActivationStatistics {
  const all = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    all.set(p, offset);
    offset += p.length;
  }
  // −∞ marks the keys the causal mask hides: not activations, left out with every non-finite value.
  const { top, median, count: n } = magnitudeStatistics(all, [1, 10]);
  return { top1: top[0], top10: top[1], median, ratio: top[0] / median, count: n };
}

/** The outliers section of the report, from the JSON. */
export function renderOutliers(r: OutliersResult): string {
  const lines: string[] = ['## Activation outliers (`outliers`)', ''];
  lines.push(
    `The ${r.size} lm models on ${count(r.sequences)} validation sequences of ${count(r.seqLen)} tokens: magnitudes ` +
      '|x| of the attention logits (scaled scores before the softmax, both maps for DIFF, visible keys only) and ' +
      "of the hidden states (every layer's output). Top-1 is the largest, top-10 the tenth largest; mean ± std " +
      `over ${r.seeds} seeds. Computed by ${r.path}. A lower top-1 / median ratio means fewer outliers, the ` +
      "paper's claim for DIFF.",
    '',
  );
  lines.push(
    '| model | logits top-1 | logits top-10 | logits median | logits top-1 / median | hidden top-1 | hidden median | ' +
      'hidden top-1 / median |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const s of r.summary) {
    const a = s.attentionLogits;
    const h = s.hiddenStates;
    lines.push(
      `| ${VARIANT_LABELS[s.variant]} | ${meanStd(a.top1, 2)} | ${meanStd(a.top10, 2)} | ${meanStd(a.median, 3)} | ` +
        `${meanStd(a.ratio, 1)} | ${meanStd(h.top1, 2)} | ${meanStd(h.median, 3)} | ${meanStd(h.ratio, 1)} |`,
    );
  }
  lines.push('', 'DIFF − baseline top-1 / median ratio, paired by seed (paired t-test):', '');
  lines.push(
    '| model | activations | mean difference | 95 % CI | p | verdict |',
    '| --- | --- | --- | --- | --- | --- |',
  );
  for (const c of r.comparisons) {
    lines.push(
      `| ${VARIANT_LABELS[c.variant]} | ${c.activation} | ${signed(c.test.meanDifference, 1)} | ` +
        `${interval(c.test, 1)} | ` +
        `${pValue(c.test.p)} | ${verdict(c.test, 'lower', VARIANT_LABELS[c.variant], 'the baseline')} |`,
    );
  }
  lines.push('');
  return `${lines.join('\n')}\n`;
}
