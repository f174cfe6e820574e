import type { SoftmaxAttrs } from '@diff-transformer/core';
import type { RefTensor } from './tensor.js';
import { refZeros } from './tensor.js';

/**
 * softmax(x / temperature) over the last dimension. The row maximum is subtracted first: even float64
 * overflows at e^710, and the suite feeds logits of 1e4.
 */
export function softmax(x: RefTensor, attrs: SoftmaxAttrs): RefTensor {
  const width = x.shape[x.shape.length - 1];
  const out = refZeros(x.shape);
  for (let row = 0; row < x.data.length / width; row++) {
    const values = Array.from(x.data.subarray(row * width, (row + 1) * width), (v) => v / attrs.temperature);
    const max = Math.max(...values);
    const exps = values.map((v) => Math.exp(v - max));
    const total = exps.reduce((s, e) => s + e, 0);
    exps.forEach((e, j) => {
      out.data[row * width + j] = e / total;
    });
  }
  return out;
}

/** Index of the largest value over the last dimension; ties go to the lowest index. */
export function argmax(x: RefTensor): RefTensor {
  const width = x.shape[x.shape.length - 1];
  const out = refZeros(x.shape.slice(0, -1));
  for (let row = 0; row < out.data.length; row++) {
    let best = 0;
    for (let j = 1; j < width; j++) if (x.data[row * width + j] > x.data[row * width + best]) best = j;
    out.data[row] = best;
  }
  return out;
}
