/** rmsNorm: y = x / √(mean(x²) + eps) · weight over the last dimension (no weight means 1). */
import type { OutputSpec, RmsNormAttrs, TensorView } from '@diff-transformer/core';
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
