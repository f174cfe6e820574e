/**
 * How far an output is from its reference: NMSE = Σ(a−b)²/Σb² (Σ(a−b)² when the reference is all
 * zeros) and the largest absolute difference. A NaN anywhere makes both NaN, so it can never pass a
 * `≤ tolerance` test.
 */
export function errorStats(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
): { nmse: number; maxAbsError: number } {
  let squaredError = 0;
  let squaredReference = 0;
  let maxAbsError = 0;
  for (let i = 0; i < actual.length; i++) {
    const diff = actual[i] - expected[i];
    squaredError += diff * diff;
    squaredReference += expected[i] * expected[i];
    if (!(Math.abs(diff) <= maxAbsError))
      maxAbsError = Number.isNaN(diff) ? NaN : Math.max(maxAbsError, Math.abs(diff));
  }
  return { nmse: squaredReference > 0 ? squaredError / squaredReference : squaredError, maxAbsError };
}
