/**
 * @diff-transformer/conformance — one conformance suite for every backend: each kernel of the contract
 * and the whole model, against an independent float64 reference, judged by NMSE and an element bound
 * from one tolerance table. `runConformance(backend)` runs it anywhere (the CLI);
 * `describeConformance(name)` from '@diff-transformer/conformance/vitest' registers it in a backend's
 * vitest file. Parity fixtures check the core graph against the official modules' own outputs
 * (`difftx parity`).
 */
export type {
  CaseOutcome,
  CaseResult,
  CaseRunOptions,
  CaseStatus,
  ConformanceCase,
  ConformanceReport,
  FloatDType,
} from './types.js';
export { conformanceCases } from './cases/index.js';
export { runConformance, runCase, selectCases, type RunOptions, type SelectOptions } from './runner.js';
export { formatReportTable, formatSummaryTable } from './report.js';
export { compare, nmse, maxAbsError, withinTolerance, type Comparison, type ElementBound } from './metrics.js';
export {
  TOLERANCES,
  elementBoundFor,
  toleranceFor,
  toleranceRow,
  type CaseKernel,
  type ToleranceRow,
  type ToleranceVariant,
} from './tolerances.js';
/** The float64 reference (the package @diff-transformer/reference), re-exported for the suite's users. */
export * as reference from '@diff-transformer/reference';
export {
  readParityFixture,
  runParityFixture,
  PARITY_SOURCES,
  type ParityFixture,
  type ParityResult,
  type ParityModuleKind,
} from './parity.js';
