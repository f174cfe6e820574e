/**
 * @diff-transformer/experiments — the paper's claims in miniature, measured honestly: language
 * modelling (lm), multi-needle retrieval, attention noise, activation outliers and ablations of DIFF
 * against its parameter-matched baseline, with seeds, paired t-tests, SVG figures and a Markdown
 * report generated from the JSON results. `difftx experiment` is its command line. Node only.
 */
export { runExperiments, renderReportFromFiles, machine, REPORT_FILE, HEADER_FILE } from './runner.js';
export type { RunExperimentsOptions, RunExperimentsResult } from './runner.js';
export {
  EXPERIMENTS,
  renderReport,
  renderSection,
  sectionOf,
  type ExperimentName,
  type ExperimentResults,
  type Machine,
  type ReportHeader,
} from './report.js';
export {
  SCALES,
  parseScale,
  validateScale,
  ScaleError,
  type ExperimentScale,
  type LmSize,
  type RunLength,
} from './scale.js';
export {
  RetrievalSequences,
  retrievalVocabSize,
  validateRetrievalTask,
  NEEDLE,
  QUERY,
  type RetrievalTaskOptions,
  type RetrievalExample,
} from './retrieval-task.js';
export {
  pairedTTest,
  spread,
  studentTCdf,
  studentTQuantile,
  regularizedIncompleteBeta,
  logGamma,
  magnitudeStatistics,
  type PairedTest,
  type Spread,
} from './stats.js';
export { VARIANTS, VARIANT_LABELS, variantConfig, runKey, type Variant, type RunResult } from './runs.js';
export type { LmResult } from './lm.js';
export type { RetrievalResult } from './retrieval.js';
export type { AttentionNoiseResult } from './attention-noise.js';
export type { OutliersResult } from './outliers.js';
export type { AblationsResult } from './ablations.js';
