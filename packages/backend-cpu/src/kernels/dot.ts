/**
 * The inner product shared by matmul's tails and the attention kernels' scores: four independent
 * partial sums, so consecutive multiply-adds do not wait on one another.
 */

/** Σ_p x[xOffset + p] · y[yOffset + p] (in doubles). */
export function dot(x: Float32Array, xOffset: number, y: Float32Array, yOffset: number, length: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let p = 0;
  for (; p + 4 <= length; p += 4) {
    s0 += x[xOffset + p] * y[yOffset + p];
    s1 += x[xOffset + p + 1] * y[yOffset + p + 1];
    s2 += x[xOffset + p + 2] * y[yOffset + p + 2];
    s3 += x[xOffset + p + 3] * y[yOffset + p + 3];
  }
  for (; p < length; p++) s0 += x[xOffset + p] * y[yOffset + p];
  return s0 + s1 + (s2 + s3);
}
