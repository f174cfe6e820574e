/** rmsNorm: y = x / √(mean(x²) + eps) · weight over the last dimension (no weight means 1), and its backward. */
import type { OutputSpec, RmsNormAttrs, RmsNormGradientSpecs, TensorView } from '@diff-transformer/core';
import { floats } from '../storage.js';

export function rmsNorm(
  x: TensorView,
  weight: TensorView | null,
  attrs: RmsNormAttrs,
  _out: OutputSpec,
  y: Float32Array,
): void {
  const input = floats(x);
  const gain = weight ? floats(weight) : null;
  const width = x.shape[x.shape.length - 1];
  if (width === 0) return;
  const rows = input.length / width;
  for (let r = 0; r < rows; r++) {
    const offset = r * width;
    const inverse = inverseRms(input, offset, width, attrs.eps);
    if (gain) for (let i = 0; i < width; i++) y[offset + i] = input[offset + i] * inverse * gain[i];
    else for (let i = 0; i < width; i++) y[offset + i] = input[offset + i] * inverse;
  }
}

/** 1 / √(mean(row²) + eps), with the sum of squares in doubles. */
export function inverseRms(row: ArrayLike<number>, offset: number, width: number, eps: number): number {
  let sumOfSquares = 0;
  for (let i = 0; i < width; i++) {
    const v = row[offset + i];
    sumOfSquares += v * v;
  }
  return 1 / Math.sqrt(sumOfSquares / width + eps);
}

/**
 * The gradients of rmsNorm, row by row, with ρ = 1/√(mean(x²) + eps), n = x·ρ and g = dy ⊙ weight:
 *   dx = ρ · (g − n · mean(g ⊙ n)),   dWeight = Σ_rows dy ⊙ n
 * dWeight is summed in doubles in row order: the same bits on every call.
 */
export function rmsNormBackward(
  x: TensorView,
  weight: TensorView | null,
  dy: TensorView,
  attrs: RmsNormAttrs,
  _out: RmsNormGradientSpecs,
  grads: { dx: Float32Array; dWeight: Float32Array | null },
): void {
  const input = floats(x);
  const gain = weight ? floats(weight) : null;
  const upstream = floats(dy);
  const { dx, dWeight } = grads;
  const width = x.shape[x.shape.length - 1];
  const weightSum = dWeight ? new Float64Array(width) : null;
  const rows = width === 0 ? 0 : input.length / width;
  for (let r = 0; r < rows; r++) {
    const offset = r * width;
    const rho = inverseRms(input, offset, width, attrs.eps);
    let projection = 0;
    for (let i = 0; i < width; i++) {
      projection += upstream[offset + i] * (gain ? gain[i] : 1) * input[offset + i] * rho;
    }
    const mean = projection / width;
    for (let i = 0; i < width; i++) {
      const n = input[offset + i] * rho;
      dx[offset + i] = rho * (upstream[offset + i] * (gain ? gain[i] : 1) - n * mean);
      if (weightSum) weightSum[i] += upstream[offset + i] * n;
    }
  }
  if (dWeight && weightSum) dWeight.set(weightSum);
}
