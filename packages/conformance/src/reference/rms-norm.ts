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
