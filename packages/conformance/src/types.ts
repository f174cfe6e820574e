import type { Backend, GradientTable } from '@diff-transformer/core';
import type { CaseKernel, ToleranceVariant } from './tolerances.js';

/** The float storage types a case's inputs can be uploaded in. */
export type FloatDType = 'float32' | 'float16' | 'bfloat16';

export interface CaseRunOptions {
  /** Storage dtype of the float inputs of kernel cases (default float32). */
  readonly dtype?: FloatDType;
  /**
   * For a backend that claims to implement everything: a case its backend reports as unsupported fails
   * instead of being reported apart (default false).
   */
  readonly strict?: boolean;
  /**
   * Run each case in the backend's guard mode, where it has one (Backend.guards): canaries around every
   * storage, and a case fails if a kernel wrote outside its output (default true).
   */
  readonly guards?: boolean;
  /**
   * The gradient table the cases that differentiate (opGradient, gradients) give valueAndGrads; default
   * core's GRADIENTS. The suite's own tests pass a table with one rule broken, to prove a case catches it.
   */
  readonly gradients?: GradientTable;
}

/** What a case measured; the runner turns it into a CaseResult. */
export interface CaseOutcome {
  /** Worst NMSE over everything the case compared. */
  readonly nmse: number;
  /** Largest absolute error over everything the case compared. */
  readonly maxAbsError: number;
  /** Worst element over everything the case compared: max |a − b| / (atol + rtol·|b|); ≤ 1 passes. */
  readonly elementError: number;
  /** The NMSE threshold the case was held to (from the tolerance table). */
  readonly tolerance: number;
  /** The element bound it was held to (from the same row): |a − b| ≤ atol + rtol·|b|. */
  readonly atol: number;
  readonly rtol: number;
  /** Set when the case failed: which comparison, and why. */
  readonly failure?: string;
}

export interface ConformanceCase {
  /** Unique, `kernel/what it checks`. */
  readonly name: string;
  readonly kernel: CaseKernel;
  /**
   * Whole-model cases build their model through DiffTransformer, which stores its parameters in
   * float32; they ignore the dtype option and are judged at float32.
   */
  readonly float32Only?: boolean;
  /**
   * A large case (tiles of 512 and more, K = 1000, caches of thousands of keys): the paths a backend
   * takes only at sizes the default suite does not reach. Run only when asked for (`large: true`).
   */
  readonly large?: boolean;
  /**
   * Set on a case that is ill-conditioned by construction (its comment says why): it is held to the
   * tolerance rows of this variant instead of the kernel's defaults.
   */
  readonly variant?: ToleranceVariant;
  /** Runs the case on a backend. Throws UnsupportedKernelError when the backend lacks something. */
  run(backend: Backend, options?: CaseRunOptions): Promise<CaseOutcome>;
}

export type CaseStatus = 'pass' | 'fail' | 'unsupported';

export interface CaseResult {
  readonly name: string;
  readonly kernel: string;
  readonly status: CaseStatus;
  /** null only where nothing was measured (unsupported, or the case threw). */
  readonly nmse: number | null;
  readonly maxAbsError: number | null;
  /** The worst element against the bound, max |a − b| / (atol + rtol·|b|): ≤ 1 passes. */
  readonly elementError: number | null;
  /** NMSE threshold. */
  readonly tolerance: number;
  /** Element bound: every |a − b| ≤ atol + rtol·|b|. */
  readonly atol: number;
  readonly rtol: number;
  readonly message?: string;
}

export interface ConformanceReport {
  readonly backend: string;
  readonly device: string;
  /** The dtype the kernel cases ran in. */
  readonly dtype: FloatDType;
  readonly cases: CaseResult[];
  readonly summary: { pass: number; fail: number; unsupported: number };
}
