/**
 * Counting the values a model cannot compute with. A checkpoint with NaN or ±Infinity in its
 * parameters loads without complaint from the format's point of view, then yields NaN logits; the
 * loader counts them per tensor and refuses (NonFiniteTensorError) unless told otherwise.
 */

/** NaN and ±Infinity among `values`: how many of each. */
export function countNonFinite(values: ArrayLike<number>): { nan: number; infinite: number } {
  let nan = 0;
  let infinite = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    // One comparison for the common case: v − v is 0 for every finite v, NaN otherwise.
    if (v - v !== 0) {
      if (Number.isNaN(v)) nan++;
      else infinite++;
    }
  }
  return { nan, infinite };
}
