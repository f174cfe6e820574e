/**
 * attention-noise: where the retrieval models look when they answer (the paper's Table 3 metric). For
 * each query of a test example, the attention row of the position that must produce the answer is
 * split into the answer span (the queried needle's three tokens) and the rest of the context (every
 * other token before the queries: distractors and the other needles); the masses are averaged over
 * heads, queries and examples, per layer, then over seeds.
 *
 * The maps come from the float64 reference (`attentionMaps` of @diff-transformer/reference),
 * an explicitly slow path for short contexts: the fused kernels never store probabilities and are not
 * touched. DIFF's map is the differential map1 − λ·map2, whose rows sum to 1 − λ and may hold negative
 * weights, so the rest's mass is also given as the sum of absolute weights; map 1 alone is shown too.
 */
import * as reference from '@diff-transformer/reference';
import { heatmapsSvg, type HeatmapPanel } from '@diff-transformer/train';
import { count, fixed, meanStd } from './format.js';
import { writeFigure } from './output.js';
import { retrievalRuns, retrievalTestSet } from './retrieval.js';
import type { RetrievalExample } from './retrieval-task.js';
import { type ExperimentContext, VARIANT_LABELS, type Variant } from './runs.js';
import { type Spread, spread } from './stats.js';

/** Which map a measurement is of: DIFF's differential map or its map 1, the baseline's softmax. */
export type MapKind = 'differential' | 'map 1' | 'softmax';

export interface LayerMass {
  readonly layer: number;
  /** Σ of the row's weights on the answer span. */
  readonly answer: number;
  /** Σ of the row's weights on the rest of the context. */
  readonly noise: number;
  /** Σ of |weights| on the rest of the context. */
  readonly noiseAbs: number;
}

export interface AttentionNoiseResult {
  readonly experiment: 'attention-noise';
  readonly scale: string;
  readonly seeds: number;
  readonly path: string;
  readonly contextLength: number;
  readonly examples: number;
  readonly queriesPerExample: number;
  readonly perModel: ReadonlyArray<{
    readonly variant: Variant;
    readonly seed: number;
    readonly map: MapKind;
    readonly layers: readonly LayerMass[];
  }>;
  readonly summary: ReadonlyArray<{
    readonly variant: Variant;
    readonly map: MapKind;
    readonly layer: number;
    readonly answer: Spread;
    readonly noise: Spread;
    readonly noiseAbs: Spread;
  }>;
  /** DIFF V1's λ per layer for each seed (its differential rows sum to 1 − λ). */
  readonly lambda: ReadonlyArray<{ readonly seed: number; readonly layers: readonly number[] }>;
  readonly figures: readonly string[];
  readonly seconds: number;
}

export async function runAttentionNoise(ctx: ExperimentContext): Promise<AttentionNoiseResult> {
  const started = performance.now();
  const runs = await retrievalRuns(ctx);
  const length = ctx.scale.retrieval.training.seqLen;
  const set = retrievalTestSet(ctx, length, ctx.scale.attentionNoise.examples);
  const examples = Array.from({ length: set.count }, (_, i) => set.example(i));
  const perModel: AttentionNoiseResult['perModel'][number][] = [];
  const lambda: Array<{ seed: number; layers: number[] }> = [];
  const figureMaps = new Map<Variant, reference.AttentionMapsResult>();
  for (const [variant, trained] of runs) {
    for (const [seed, run] of trained.entries()) {
      ctx.log(
        `attention-noise ${VARIANT_LABELS[variant]} seed ${seed}: ${examples.length} examples (float64 reference)`,
      );
      const kinds: MapKind[] = variant === 'standard' ? ['softmax'] : ['differential', 'map 1'];
      const sums = new Map(
        kinds.map((k) => [k, new Map<number, { answer: number; noise: number; noiseAbs: number; n: number }>()]),
      );
      for (const [index, example] of examples.entries()) {
        const maps = reference.attentionMaps(run.result.config, run.parameters, [example.ids]);
        if (seed === 0 && index === 0) figureMaps.set(variant, maps);
        if (variant !== 'standard' && index === 0) {
          lambda.push({ seed, layers: maps.layers.map((l) => l.lambda ?? Number.NaN) });
        }
        for (const layer of maps.layers) {
          for (const head of layer.heads) {
            for (const kind of kinds) {
              const map = head.kind === 'softmax' ? head.map : kind === 'map 1' ? head.map1 : head.differential;
              const masses = queryMasses(map.data, length, example);
              const bucket = sums.get(kind)!;
              const acc = bucket.get(layer.layer) ?? { answer: 0, noise: 0, noiseAbs: 0, n: 0 };
              for (const m of masses) {
                acc.answer += m.answer;
                acc.noise += m.noise;
                acc.noiseAbs += m.noiseAbs;
                acc.n++;
              }
              bucket.set(layer.layer, acc);
            }
          }
        }
      }
      for (const kind of kinds) {
        const layers = [...sums.get(kind)!.entries()]
          .sort(([a], [b]) => a - b)
          .map(([layer, s]) => ({ layer, answer: s.answer / s.n, noise: s.noise / s.n, noiseAbs: s.noiseAbs / s.n }));
        perModel.push({ variant, seed, map: kind, layers });
      }
    }
  }
  const summary: AttentionNoiseResult['summary'][number][] = [];
  for (const variant of runs.keys()) {
    const kinds: MapKind[] = variant === 'standard' ? ['softmax'] : ['differential', 'map 1'];
    for (const kind of kinds) {
      const models = perModel.filter((m) => m.variant === variant && m.map === kind);
      for (const { layer } of models[0].layers) {
        const of = (field: 'answer' | 'noise' | 'noiseAbs') => spread(models.map((m) => m.layers[layer][field]));
        summary.push({ variant, map: kind, layer, answer: of('answer'), noise: of('noise'), noiseAbs: of('noiseAbs') });
      }
    }
  }
  const figures = await attentionFigures(ctx, figureMaps, examples[0], length);
  return {
    experiment: 'attention-noise',
    scale: ctx.scale.name,
    seeds: ctx.seeds,
    path: 'the float64 reference model (reference.attentionMaps, @diff-transformer/reference)',
    contextLength: length,
    examples: examples.length,
    queriesPerExample: ctx.scale.retrieval.task.queries,
    perModel,
    summary,
    lambda,
    figures,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The masses of each query's row in one map [1, T, T]. */
function queryMasses(
  map: Float64Array,
  length: number,
  example: RetrievalExample,
): Array<{ answer: number; noise: number; noiseAbs: number }> {
  return example.queries.map((query) => {
    const needle = example.needles[query.needle].position;
    const row = map.subarray(query.position * length, (query.position + 1) * length);
    let answer = 0;
    let noise = 0;
    let noiseAbs = 0;
    for (let s = 0; s < example.contextLength; s++) {
      if (s >= needle && s < needle + 3) answer += row[s];
      else {
        noise += row[s];
        noiseAbs += Math.abs(row[s]);
      }
    }
    return { answer, noise, noiseAbs };
  });
}

/** One figure per layer: the query rows of head 0 for DIFF's map 1, map 2, their difference and the baseline. */
async function attentionFigures(
  ctx: ExperimentContext,
  maps: Map<Variant, reference.AttentionMapsResult>,
  example: RetrievalExample,
  length: number,
): Promise<string[]> {
  const diff = maps.get('differential');
  const base = maps.get('standard');
  if (!diff || !base) return [];
  const rowLabels = example.queries.map((q, i) => `query ${i + 1} (needle at ${example.needles[q.needle].position})`);
  const rows = (map: Float64Array) =>
    Float64Array.from(
      example.queries.flatMap((q) => Array.from(map.subarray(q.position * length, (q.position + 1) * length))),
    );
  const figures: string[] = [];
  for (const layer of diff.layers) {
    const d = layer.heads[0];
    const b = base.layers[layer.layer].heads[0];
    if (d.kind !== 'differential' || b.kind !== 'softmax') continue;
    const panel = (title: string, map: Float64Array): HeatmapPanel => ({
      title,
      rows: example.queries.length,
      columns: length,
      values: rows(map),
      rowLabels,
    });
    const svg = await heatmapsSvg(
      [
        panel('DIFF map 1', d.map1.data),
        panel('DIFF map 2', d.map2.data),
        panel(`DIFF map 1 − λ·map 2 (λ = ${fixed(layer.lambda, 3)})`, d.differential.data),
        panel('baseline softmax map', b.map.data),
      ],
      {
        title: `Attention of the answering positions, layer ${layer.layer}, head 0, seed 0, one test example`,
        rowTitle: 'query',
        columnTitle: 'key position (token)',
        valueTitle: 'attention weight',
        panelWidth: 300,
        cellHeight: 18,
      },
    );
    figures.push(await writeFigure(ctx.out, `attention-maps-layer${layer.layer}.svg`, svg));
  }
  return figures;
}

/** The attention-noise section of the report, from the JSON. */
export function renderAttentionNoise(r: AttentionNoiseResult): string {
  const lines: string[] = ['## Attention noise (`attention-noise`)', ''];
  lines.push(
    `On the retrieval models, ${count(r.examples)} test examples of ${count(r.contextLength)} tokens with ` +
      `${r.queriesPerExample} queries each. For the position that must produce each answer, the attention weights ` +
      `are summed over the answer span (the queried needle's three tokens) and over the rest of the context ` +
      `(distractors and the other needles), averaged over heads, queries and examples; mean ± std over ` +
      `${r.seeds} seeds. The maps come from ${r.path}: a slow path for short contexts that leaves the fused kernels ` +
      'as they are. DIFF\'s differential map rows sum to 1 − λ and may be negative, hence "|rest|" (the sum of ' +
      "absolute weights); DIFF's map 1 alone is listed too. Higher answer mass and lower noise are the paper's claim.",
    '',
  );
  lines.push(
    '| model | map | layer | answer span | rest of context | \\|rest\\| |',
    '| --- | --- | --- | --- | --- | --- |',
  );
  for (const s of r.summary) {
    lines.push(
      `| ${VARIANT_LABELS[s.variant]} | ${s.map} | ${s.layer} | ${meanStd(s.answer, 3)} | ${meanStd(s.noise, 3)} | ` +
        `${meanStd(s.noiseAbs, 3)} |`,
    );
  }
  if (r.lambda.length) {
    lines.push('', "DIFF V1's λ per layer (seed: layer 0, layer 1, …):", '');
    for (const l of r.lambda) lines.push(`- seed ${l.seed}: ${l.layers.map((x) => fixed(x, 3)).join(', ')}`);
  }
  lines.push('');
  for (const path of r.figures) lines.push(`![Attention maps of one example](${path})`, '');
  return `${lines.join('\n')}\n`;
}
