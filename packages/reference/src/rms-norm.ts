import type { RmsNormAttrs } from '@diff-transformer/core';
import type { RefTensor } from './tensor.js';
import { refZeros } from './tensor.js';

/** y = x / √(mean(x²) + eps) · weight over the last dimension; a null weight means 1. */
export function rmsNorm(x: RefTensor, weight: RefTensor | null, attrs: RmsNormAttrs): RefTensor {
  const width = x.shape[x.shape.length - 1];
  const out = refZeros(x.shape);
  for (let row = 0; row < x.data.length / width; row++) {
    let sumOfSquares = 0;
    for (let j = 0; j < width; j++) sumOfSquares += x.data[row * width + j] ** 2;
    const inverseRms = 1 / Math.sqrt(sumOfSquares / width + attrs.eps);
    for (let j = 0; j < width; j++) {
      out.data[row * width + j] = x.data[row * width + j] * inverseRms * (weight ? weight.data[j] : 1);
    }
  }
  return out;
}

/**
 * The gradients of rmsNorm, by the chain rule on y_j = x_j · ρ · w_j with ρ = (mean(x²) + eps)^(−½):
 * ∂ρ/∂x_i = −ρ³ · x_i / D, so dx_i = ρ·w_i·dy_i − (ρ³/D) · x_i · Σ_j dy_j·w_j·x_j, and dw_j = Σ_rows dy_j·x_j·ρ.
 */
export function rmsNormBackward(
  x: RefTensor,
  weight: RefTensor | null,
  dy: RefTensor,
  attrs: RmsNormAttrs,
): { dx: RefTensor; dWeight: RefTensor | null } {
  const width = x.shape[x.shape.length - 1];
  const dx = refZeros(x.shape);
  const dWeight = weight ? refZeros(weight.shape) : null;
  const w = (j: number) => (weight ? weight.data[j] : 1);
  for (let row = 0; row < x.data.length / width; row++) {
    const base = row * width;
    let sumOfSquares = 0;
    for (let j = 0; j < width; j++) sumOfSquares += x.data[base + j] ** 2;
    const rho = (sumOfSquares / width + attrs.eps) ** -0.5;
    let projection = 0;
    for (let j = 0; j < width; j++) projection += dy.data[base + j] * w(j) * x.data[base + j];
    for (let j = 0; j < width; j++) {
      dx.data[base + j] = rho * w(j) * dy.data[base + j] - (rho ** 3 / width) * x.data[base + j] * projection;
      if (dWeight) dWeight.data[j] += dy.data[base + j] * x.data[base + j] * rho;
    }
  }
  return { dx, dWeight };
}
