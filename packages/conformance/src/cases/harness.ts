/**
 * What every case shares: a workspace that owns the tensors a case creates (so nothing outlives it),
 * and the judge that compares each output with the reference.
 */
import type { Backend, GradientTable, Random, Tensor } from '@diff-transformer/core';
import { UnsupportedKernelError, createRandom, tensor } from '@diff-transformer/core';
import { compare } from '../metrics.js';
import type { ElementBound } from '../metrics.js';
import type { RefTensor } from '@diff-transformer/reference';
import { refTensor } from '@diff-transformer/reference';
import type { CaseKernel, ToleranceVariant } from '../tolerances.js';
import { TOLERANCES, elementBoundFor, toleranceFor } from '../tolerances.js';
import type { CaseOutcome, ConformanceCase, FloatDType } from '../types.js';
import { seedOf } from './inputs.js';

/** An uploaded input: the tensor on the backend and, for the reference, the values it stores. */
export interface Input {
  readonly tensor: Tensor;
  readonly ref: RefTensor;
}

/** One comparison of a case: a result read back from the backend against the reference. */
export interface Check {
  readonly label: string;
  readonly actual: { readonly shape: readonly number[]; readonly data: ArrayLike<number> };
  readonly expected: RefTensor;
}

export class Workspace {
  readonly #owned: Tensor[] = [];
  readonly failures: string[] = [];

  constructor(
    readonly backend: Backend,
    readonly dtype: FloatDType,
    readonly kernel: CaseKernel,
    /** The gradient table of the run (CaseRunOptions.gradients); undefined: core's GRADIENTS. */
    readonly gradients?: GradientTable,
  ) {}

  /**
   * Uploads float values in the case's dtype. The reference gets the values as stored (read back
   * when the dtype rounds them), so input rounding is never counted against the kernel.
   */
  async floats(values: ArrayLike<number>, shape: readonly number[]): Promise<Input> {
    if (!this.backend.dtypes.includes(this.dtype)) {
      throw new UnsupportedKernelError(this.kernel, this.backend.name, `the backend does not store ${this.dtype}`);
    }
    const t = this.own(tensor(values, shape, { backend: this.backend, dtype: this.dtype }));
    // float32 storage is Float32Array.from(values): round the same way instead of reading back.
    const stored = this.dtype === 'float32' ? Float32Array.from(values) : await t.data();
    return { tensor: t, ref: refTensor(stored, shape) };
  }

  /** Uploads int32 values (token ids). */
  ints(values: ArrayLike<number>, shape: readonly number[]): Input {
    const t = this.own(tensor(Int32Array.from(values), shape, { backend: this.backend }));
    return { tensor: t, ref: refTensor(values, shape) };
  }

  /** Takes ownership: the tensor is disposed when the case ends, pass or fail. */
  own<T extends Tensor>(t: T): T {
    this.#owned.push(t);
    return t;
  }

  /** Reads a backend result back for a check. */
  async read(t: Tensor): Promise<{ shape: readonly number[]; data: ArrayLike<number> }> {
    return { shape: t.shape, data: await t.data() };
  }

  /** Records a failure that is not a threshold (e.g. two seeds that should differ but do not). */
  fail(message: string): void {
    this.failures.push(message);
  }

  dispose(): void {
    for (const t of this.#owned) t.dispose();
    this.#owned.length = 0;
  }
}

/** What a case is held to: the NMSE threshold and the element bound of its tolerance row. */
export interface Limits extends ElementBound {
  readonly nmse: number;
}

/**
 * Compares every check and keeps the worst NMSE, max abs error and element error; names each check
 * that fails and, for the element bound, the element.
 */
export function judge(checks: readonly Check[], limits: Limits, extraFailures: readonly string[] = []): CaseOutcome {
  let worstNmse = 0;
  let worstAbs = 0;
  let worstElement = 0;
  const failures = [...extraFailures];
  const worse = (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b));
  for (const check of checks) {
    const { actual, expected, label } = check;
    if (actual.shape.join(',') !== expected.shape.join(',')) {
      failures.push(`${label}: shape [${actual.shape.join(', ')}], the reference has [${expected.shape.join(', ')}]`);
      continue;
    }
    const c = compare(actual.data, expected.data, limits);
    worstNmse = worse(worstNmse, c.nmse);
    worstAbs = worse(worstAbs, c.maxAbsError);
    worstElement = worse(worstElement, c.elementError);
    if (c.nonFinite > 0) {
      failures.push(
        `${label}: ${c.nonFinite} non-finite value(s) ` +
          `where the reference is finite (first at index ${c.firstNonFinite})`,
      );
      continue;
    }
    if (!(c.nmse <= limits.nmse)) {
      failures.push(
        `${label}: NMSE ${c.nmse.toExponential(2)} > tolerance ${limits.nmse.toExponential(0)} ` +
          `(max abs error ${c.maxAbsError.toExponential(2)})`,
      );
    }
    if (!(c.elementError <= 1)) {
      const i = c.worstElement;
      const a = actual.data[i];
      const b = expected.data[i];
      failures.push(
        `${label}: element ${i} [${unravel(i, expected.shape).join(', ')}] is ${a}, the reference ${b}: ` +
          `|a − b| = ${Math.abs(a - b).toExponential(2)} > atol + rtol·|b| = ` +
          `${(limits.atol + limits.rtol * Math.abs(b)).toExponential(2)} (atol ${limits.atol.toExponential(1)}, ` +
          `rtol ${limits.rtol.toExponential(1)})`,
      );
    }
  }
  const outcome: CaseOutcome = {
    nmse: worstNmse,
    maxAbsError: worstAbs,
    elementError: worstElement,
    tolerance: limits.nmse,
    atol: limits.atol,
    rtol: limits.rtol,
  };
  return failures.length ? { ...outcome, failure: summarise(failures) } : outcome;
}

/** The multi-index of flat index i in a row-major shape. */
function unravel(i: number, shape: readonly number[]): number[] {
  const index: number[] = [];
  let rest = i;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    index.unshift(rest % shape[axis]);
    rest = Math.floor(rest / shape[axis]);
  }
  return index;
}

function summarise(failures: readonly string[]): string {
  const shown = failures.slice(0, 3).join('; ');
  return failures.length > 3 ? `${shown}; … (${failures.length} failures in all)` : shown;
}

export interface CaseOptions {
  /** The case builds a DiffTransformer (float32 parameters) or checks core's float32 tables, and ignores the dtype option. */
  readonly float32Only?: boolean;
  /** Opt-in: run only when a run asks for large cases. */
  readonly large?: boolean;
  /** The documented tolerance variant of a case that is ill-conditioned by construction. */
  readonly variant?: ToleranceVariant;
}

/**
 * A case from its body. The body gets a workspace and a generator seeded from the case name, creates
 * its inputs through the workspace, runs core's ops on the backend and returns the checks to judge.
 */
export function defineCase(
  name: string,
  kernel: CaseKernel,
  body: (ws: Workspace, random: Random) => Promise<Check[]>,
  options: CaseOptions = {},
): ConformanceCase {
  return {
    name,
    kernel,
    float32Only: options.float32Only ?? false,
    large: options.large ?? false,
    ...(options.variant ? { variant: options.variant } : {}),
    async run(backend, runOptions = {}) {
      const dtype = options.float32Only ? 'float32' : (runOptions.dtype ?? 'float32');
      const ws = new Workspace(backend, dtype, kernel, runOptions.gradients);
      try {
        const checks = await body(ws, createRandom(seedOf(name)));
        const limits = {
          nmse: toleranceFor(kernel, backend.name, dtype, TOLERANCES, options.variant),
          ...elementBoundFor(kernel, backend.name, dtype, TOLERANCES, options.variant),
        };
        return judge(checks, limits, ws.failures);
      } finally {
        ws.dispose();
      }
    },
  };
}
