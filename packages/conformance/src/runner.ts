/**
 * Runs cases on a backend, one at a time, and classifies each: 'pass', 'fail' (over the threshold, a
 * non-finite value, a leak, or any exception) or 'unsupported' (the backend lacks a kernel or dtype,
 * reported apart from failures as ggml's test-backend-ops does; a strict run fails it instead, for a
 * backend that claims to implement everything).
 */
import type { Backend, GuardViolation } from '@diff-transformer/core';
import { memory } from '@diff-transformer/core';
import { conformanceCases } from './cases/index.js';
import { TOLERANCES, elementBoundFor, toleranceFor } from './tolerances.js';
import type {
  CaseOutcome,
  CaseResult,
  CaseRunOptions,
  ConformanceCase,
  ConformanceReport,
  FloatDType,
} from './types.js';

export interface SelectOptions {
  /** Also select the large cases (ConformanceCase.large; default false). */
  readonly large?: boolean;
}

export interface RunOptions extends CaseRunOptions, SelectOptions {
  /** Runs only the cases whose name matches (a RegExp, or a substring). */
  readonly filter?: RegExp | string;
  /** Called after each case, e.g. to print progress. */
  readonly onCase?: (result: CaseResult, index: number, total: number) => void;
}

/** The cases a filter selects, in suite order; the large ones only with `large: true`. */
export function selectCases(filter?: RegExp | string, options: SelectOptions = {}): ConformanceCase[] {
  const all = conformanceCases().filter((c) => options.large === true || !c.large);
  if (filter === undefined) return all;
  // String.prototype.search ignores lastIndex, so a /g or /y RegExp behaves like any other.
  return all.filter((c) => (typeof filter === 'string' ? c.name.includes(filter) : c.name.search(filter) >= 0));
}

/** UnsupportedKernelError, also when it comes from another copy of core (ESM beside CJS). */
function isUnsupported(error: unknown): error is Error {
  return error instanceof Error && (error as { code?: unknown }).code === 'UNSUPPORTED_KERNEL';
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Why an outcome that names no failure of its own fails its limits. */
function overLimits(outcome: CaseOutcome): string {
  const over: string[] = [];
  if (!(outcome.nmse <= outcome.tolerance)) over.push(`NMSE ${outcome.nmse} > tolerance ${outcome.tolerance}`);
  if (!(outcome.elementError <= 1)) {
    over.push(`an element is ${outcome.elementError} times its bound (atol ${outcome.atol}, rtol ${outcome.rtol})`);
  }
  return over.join('; ');
}

/** Runs a case and judges what it measured, or classifies what it threw. */
async function measure(
  testCase: ConformanceCase,
  backend: Backend,
  options: CaseRunOptions,
  dtype: FloatDType,
): Promise<CaseResult> {
  const base = { name: testCase.name, kernel: testCase.kernel };
  try {
    const outcome = await testCase.run(backend, {
      dtype,
      ...(options.gradients ? { gradients: options.gradients } : {}),
    });
    const passed = outcome.failure === undefined && outcome.nmse <= outcome.tolerance && outcome.elementError <= 1;
    return {
      ...base,
      status: passed ? 'pass' : 'fail',
      nmse: outcome.nmse,
      maxAbsError: outcome.maxAbsError,
      elementError: outcome.elementError,
      tolerance: outcome.tolerance,
      atol: outcome.atol,
      rtol: outcome.rtol,
      ...(passed ? {} : { message: outcome.failure ?? overLimits(outcome) }),
    };
  } catch (error) {
    const tolerance = toleranceFor(testCase.kernel, backend.name, dtype, TOLERANCES, testCase.variant);
    const { atol, rtol } = elementBoundFor(testCase.kernel, backend.name, dtype, TOLERANCES, testCase.variant);
    const unsupported = isUnsupported(error) && !options.strict;
    return {
      ...base,
      status: unsupported ? 'unsupported' : 'fail',
      nmse: null,
      maxAbsError: null,
      elementError: null,
      tolerance,
      atol,
      rtol,
      message:
        isUnsupported(error) && options.strict
          ? `unsupported, and the run is strict: ${describeError(error)}`
          : describeError(error),
    };
  }
}

/** What a guard check found, as one sentence; undefined when every canary held. */
function describeViolations(violations: readonly GuardViolation[]): string | undefined {
  if (violations.length === 0) return undefined;
  const each = violations.map(
    (v) =>
      `${v.words} canary word(s) ${v.side === 'after' ? 'after the last' : 'before the first'} element of a ` +
      `${v.dtype} storage of ${v.size}`,
  );
  return `a kernel wrote outside its storage: ${each.join('; ')}`;
}

/**
 * Runs one case and checks that it left no storage alive on the backend: core counts every storage
 * it allocates per backend name, so the count must be the same before and after. Where the backend has
 * guards (Backend.guards), the case runs in guard mode and fails if a kernel wrote outside a storage.
 */
export async function runCase(
  testCase: ConformanceCase,
  backend: Backend,
  options: CaseRunOptions = {},
): Promise<CaseResult> {
  const dtype: FloatDType = testCase.float32Only ? 'float32' : (options.dtype ?? 'float32');
  const before = memory(backend.name).liveStorages;
  const guards = options.guards === false ? undefined : backend.guards;
  // A caller that turned guard mode on itself keeps it on; otherwise it is on for this case only.
  const ownGuardMode = guards !== undefined && !guards.enabled;
  if (ownGuardMode) guards.enable(true);
  let result: CaseResult;
  let overwritten: string | undefined;
  try {
    result = await measure(testCase, backend, options, dtype);
    if (guards) {
      try {
        overwritten = describeViolations(await guards.check());
      } catch (error) {
        overwritten = `the guard check failed: ${describeError(error)}`;
      }
    }
  } finally {
    if (ownGuardMode) guards.enable(false);
  }
  const problems: string[] = [];
  if (overwritten) problems.push(overwritten);
  const leaked = memory(backend.name).liveStorages - before;
  if (leaked !== 0) {
    problems.push(
      leaked > 0
        ? `left ${leaked} storage(s) alive on '${backend.name}'`
        : `freed ${-leaked} storage(s) it did not allocate on '${backend.name}'`,
    );
  }
  if (problems.length > 0) {
    const message = [...(result.message ? [result.message] : []), ...problems].join('; ');
    result = { ...result, status: 'fail', message };
  }
  return result;
}

/** Runs the suite (or the cases `filter` selects) on a backend, one case after another. */
export async function runConformance(backend: Backend, options: RunOptions = {}): Promise<ConformanceReport> {
  const cases = selectCases(options.filter, options);
  const results: CaseResult[] = [];
  for (const [index, testCase] of cases.entries()) {
    const result = await runCase(testCase, backend, options);
    results.push(result);
    options.onCase?.(result, index, cases.length);
  }
  const count = (status: CaseResult['status']) => results.filter((r) => r.status === status).length;
  return {
    backend: backend.name,
    device: backend.device,
    dtype: options.dtype ?? 'float32',
    cases: results,
    summary: { pass: count('pass'), fail: count('fail'), unsupported: count('unsupported') },
  };
}
