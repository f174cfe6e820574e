/**
 * How a result is compared with the reference, as ggml's test-backend-ops does: the normalised mean
 * squared error over the whole output, with the largest absolute error reported beside it; and, as
 * torch.testing and burn do, every element against a bound atol + rtol·|b|. A NaN or an infinity where
 * the reference is finite always fails, whatever its effect on the NMSE.
 */

/** Element by element, |a − b| ≤ atol + rtol·|b| (b: the reference). */
export interface ElementBound {
  readonly atol: number;
  readonly rtol: number;
}

export interface Comparison {
  /**
   * Σ(a − b)² / Σb² over the elements where the reference is finite. When the reference is all zeros
   * the denominator becomes the element count (the plain mean squared error), so exact zeros give 0,
   * round-off stays tiny and a real error still shows. NaN or ∞ when the result holds one there.
   */
  readonly nmse: number;
  /** max |a − b| over the same elements (NaN if the result has a NaN there). */
  readonly maxAbsError: number;
  /**
   * The worst element against the bound given to compare: max |a − b| / (atol + rtol·|b|) over the same
   * elements, so ≤ 1 passes (0 where every element is exact or no bound was given, ∞ where a bound of 0
   * is exceeded, NaN for a NaN).
   */
  readonly elementError: number;
  /** Index of that element (of the largest |a − b| without a bound), or −1 when every element is exact. */
  readonly worstElement: number;
  /** Elements where the reference is finite and the result is not, or the two non-finite values differ. */
  readonly nonFinite: number;
  /** Index of the first such element, or −1. */
  readonly firstNonFinite: number;
}

/**
 * Compares a result with the reference element by element; the arrays must be equally long. `bound`
 * only decides elementError and worstElement.
 */
export function compare(actual: ArrayLike<number>, expected: ArrayLike<number>, bound?: ElementBound): Comparison {
  if (actual.length !== expected.length) {
    throw new Error(`compare: the result has ${actual.length} values, the reference ${expected.length}`);
  }
  let squaredError = 0;
  let squaredReference = 0;
  let maxAbsError = 0;
  let worst = 0;
  let worstElement = -1;
  let counted = 0;
  let nonFinite = 0;
  let firstNonFinite = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const b = expected[i];
    if (!Number.isFinite(b)) {
      // A non-finite reference (never produced by the suite's own cases) must be matched exactly.
      if (!Object.is(a, b) && !(Number.isNaN(a) && Number.isNaN(b))) {
        nonFinite++;
        if (firstNonFinite < 0) firstNonFinite = i;
      }
      continue;
    }
    if (!Number.isFinite(a)) {
      nonFinite++;
      if (firstNonFinite < 0) firstNonFinite = i;
    }
    const error = Math.abs(a - b);
    squaredError += error * error;
    squaredReference += b * b;
    maxAbsError = Number.isNaN(error) ? NaN : Math.max(maxAbsError, error);
    if (error !== 0 && !Number.isNaN(worst)) {
      // Without a bound the worst element is the largest error; error/0 is ∞ (an exact bound exceeded).
      const ratio = bound ? error / (bound.atol + bound.rtol * Math.abs(b)) : error;
      if (!(ratio <= worst)) {
        worst = ratio;
        worstElement = i;
      }
    }
    counted++;
  }
  let nmse: number;
  if (squaredReference > 0) nmse = squaredError / squaredReference;
  else nmse = squaredError === 0 ? 0 : squaredError / counted;
  const elementError = bound ? worst : 0;
  return { nmse, maxAbsError, elementError, worstElement, nonFinite, firstNonFinite };
}

/** Σ(a − b)² / Σb² (see Comparison.nmse for an all-zero reference and non-finite values). */
export function nmse(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  return compare(actual, expected).nmse;
}

/** max |a − b| over the elements where the reference is finite. */
export function maxAbsError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  return compare(actual, expected).maxAbsError;
}

/**
 * Whether a comparison passes: no stray non-finite value, NMSE ≤ tolerance and, when the comparison
 * was made against a bound, every element within it (NaN fails both).
 */
export function withinTolerance(comparison: Comparison, tolerance: number): boolean {
  return comparison.nonFinite === 0 && comparison.nmse <= tolerance && comparison.elementError <= 1;
}
