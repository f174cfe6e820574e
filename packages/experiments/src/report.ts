/**
 * REPORT.md: the exact command, the machine, the backend and the duration at the top, the findings in
 * a few lines, then each experiment's section, all generated from the JSON the run wrote (report.json
 * and one <experiment>.json each). Nothing here computes a number: it formats the JSON's.
 */
import { type AblationsResult, renderAblations } from './ablations.js';
import { type AttentionNoiseResult, renderAttentionNoise } from './attention-noise.js';
import { count, fixed, interval, meanStd, signed, verdict } from './format.js';
import { type LmResult, renderLm } from './lm.js';
import { type OutliersResult, renderOutliers } from './outliers.js';
import { type RetrievalResult, renderRetrieval } from './retrieval.js';
import { VARIANT_LABELS } from './runs.js';

export const EXPERIMENTS = ['lm', 'retrieval', 'attention-noise', 'outliers', 'ablations'] as const;
export type ExperimentName = (typeof EXPERIMENTS)[number];

export interface ExperimentResults {
  lm?: LmResult;
  retrieval?: RetrievalResult;
  'attention-noise'?: AttentionNoiseResult;
  outliers?: OutliersResult;
  ablations?: AblationsResult;
}

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly platform: string;
  readonly node: string;
}

/** report.json: how the report was made. */
export interface ReportHeader {
  readonly command: string;
  readonly scale: string;
  readonly seeds: number;
  readonly machine: Machine;
  readonly backend: { readonly name: string; readonly device: string };
  readonly startedAt: string;
  readonly seconds: number;
  /** CPU seconds of the process, all threads: the work, whatever else the machine ran. */
  readonly cpuSeconds: number;
  /** The 1-minute load average, sampled while it ran (other work on the machine slows every run). */
  readonly load: { readonly start: number; readonly max: number; readonly mean: number };
  readonly runs: { readonly trained: number; readonly reused: number };
  readonly experiments: readonly ExperimentName[];
}

export const SECTION_RENDERERS: { readonly [K in ExperimentName]: (r: NonNullable<ExperimentResults[K]>) => string } = {
  lm: renderLm,
  retrieval: renderRetrieval,
  'attention-noise': renderAttentionNoise,
  outliers: renderOutliers,
  ablations: renderAblations,
};

export function renderSection<K extends ExperimentName>(name: K, result: NonNullable<ExperimentResults[K]>): string {
  return SECTION_RENDERERS[name](result);
}

/** An experiment's section, or null where the results have none (generic, so name and result stay paired). */
export function sectionOf<K extends ExperimentName>(name: K, results: ExperimentResults): string | null {
  const result = results[name];
  return result ? renderSection(name, result) : null;
}

export function renderReport(header: ReportHeader, results: ExperimentResults): string {
  const m = header.machine;
  const lines: string[] = [
    '# The Differential Transformer in miniature: experiments',
    '',
    'The paper (Ye et al., *Differential Transformer*, ICLR 2025) claims that differential attention gives a lower ' +
      'language-modelling loss at equal size, better retrieval of key information, less attention on irrelevant ' +
      'context and smaller activation outliers. This report measures each claim at a size a CPU trains in minutes, ' +
      'with several seeds, and says what it finds either way.',
    '',
    `- command: \`${header.command}\``,
    `- scale: ${header.scale}, ${header.seeds} seeds per configuration`,
    `- machine: ${m.cpu}, ${m.cores} cores, ${fixed(m.memoryGiB, 1)} GiB, ${m.platform}, Node ${m.node}`,
    `- backend: ${header.backend.name} (${header.backend.device})`,
    `- started ${header.startedAt}; took ${count(Math.round(header.seconds))} s ` +
      `(${count(Math.round(header.cpuSeconds))} CPU seconds over all threads)`,
    `- 1-minute load average: ${fixed(header.load.start, 2)} at the start, ${fixed(header.load.mean, 2)} on ` +
      `average and ${fixed(header.load.max, 2)} at most while it ran`,
    `- training runs: ${count(header.runs.trained)} trained by this command, ${count(header.runs.reused)} reused ` +
      'from its output folder',
    '',
    'Every number below is read from the JSON files next to this report (report.json and one file per ' +
      'experiment), which the same command wrote; the figures are in figures/.',
    '',
    '## Findings',
    '',
    ...findings(results),
    '',
  ];
  for (const name of header.experiments) {
    const section = sectionOf(name, results);
    if (section !== null) lines.push(section);
  }
  return `${lines
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}

/** One line per claim: the measured difference and what it says, chosen by the numbers. */
function findings(r: ExperimentResults): string[] {
  const out: string[] = [];
  if (r.lm) {
    for (const c of r.lm.comparisons) {
      out.push(
        `- Language modelling, ${c.size}: ${VARIANT_LABELS[c.variant]} − baseline = ` +
          `${signed(c.test.meanDifference, 4)} ` +
          `bits per byte (95 % CI ${interval(c.test, 4)}, n = ${c.test.n}): ` +
          `${verdict(c.test, 'lower', VARIANT_LABELS[c.variant], 'the baseline')}.`,
      );
    }
  }
  if (r.retrieval) {
    for (const c of r.retrieval.comparisons) {
      out.push(
        `- Retrieval at ${count(c.length)} tokens: DIFF V1 − baseline accuracy = ${signed(c.test.meanDifference, 3)} ` +
          `(95 % CI ${interval(c.test, 3)}, n = ${c.test.n}): ${verdict(c.test, 'higher', 'DIFF V1', 'the baseline')}.`,
      );
    }
  }
  if (r['attention-noise']) {
    const summary = r['attention-noise'].summary;
    const last = Math.max(...summary.map((s) => s.layer));
    const diff = summary.find((s) => s.variant === 'differential' && s.map === 'differential' && s.layer === last);
    const base = summary.find((s) => s.variant === 'standard' && s.layer === last);
    if (diff && base) {
      out.push(
        `- Attention noise, last layer (${last}): answer span ${meanStd(diff.answer, 3)} (DIFF V1) vs ` +
          `${meanStd(base.answer, 3)} (baseline); rest of the context ${meanStd(diff.noise, 3)} ` +
          `(|rest| ${meanStd(diff.noiseAbs, 3)}) vs ${meanStd(base.noise, 3)}.`,
      );
    }
  }
  if (r.outliers) {
    for (const c of r.outliers.comparisons) {
      out.push(
        `- Outliers (${c.activation}, top-1 / median), ${VARIANT_LABELS[c.variant]} − baseline = ` +
          `${signed(c.test.meanDifference, 1)} (95 % CI ${interval(c.test, 1)}): ` +
          `${verdict(c.test, 'lower', VARIANT_LABELS[c.variant], 'the baseline')}.`,
      );
    }
  }
  if (r.ablations) {
    for (const c of r.ablations.comparisons) {
      out.push(
        `- Ablation, ${VARIANT_LABELS[c.variant]} − DIFF V1 = ${signed(c.test.meanDifference, 4)} bits per byte ` +
          `(95 % CI ${interval(c.test, 4)}): ${verdict(c.test, 'lower', VARIANT_LABELS[c.variant], 'DIFF V1')}.`,
      );
    }
  }
  return out;
}
