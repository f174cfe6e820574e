/** The kernels that turn logits into a next token: softmax at a temperature, and argmax. */
import type { ArgmaxAttrs, OutputSpec, SoftmaxAttrs, TensorView } from '@diff-transformer/core';
import { floats } from '../storage.js';

/**
 * softmax(x / temperature) over the last dimension. The row maximum is subtracted before exp (so
 * large logits cannot overflow); since temperature > 0, max(x / T) = max(x) / T.
 */
export function softmax(x: TensorView, attrs: SoftmaxAttrs, _out: OutputSpec, y: Float32Array): void {
  const input = floats(x);
  const width = x.shape[x.shape.length - 1];
  const inverseTemperature = 1 / attrs.temperature;
  const rows = input.length / width;
  // exp values are kept in doubles until the row's sum is known, then rounded once.
  const exps = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    const offset = r * width;
    let max = -Infinity;
    for (let i = 0; i < width; i++) if (input[offset + i] > max) max = input[offset + i];
    let sum = 0;
    for (let i = 0; i < width; i++) {
      const e = Math.exp((input[offset + i] - max) * inverseTemperature);
      exps[i] = e;
      sum += e;
    }
    const inverseSum = 1 / sum;
    for (let i = 0; i < width; i++) y[offset + i] = exps[i] * inverseSum;
  }
}

/** Index of the largest value over the last dimension; a strict comparison keeps the lowest index on ties. */
export function argmax(x: TensorView, _attrs: ArgmaxAttrs, _out: OutputSpec, y: Int32Array): void {
  const input = floats(x);
  const width = x.shape[x.shape.length - 1];
  const rows = input.length / width;
  for (let r = 0; r < rows; r++) {
    const offset = r * width;
    let best = 0;
    let bestValue = input[offset];
    for (let i = 1; i < width; i++) {
      if (input[offset + i] > bestValue) {
        bestValue = input[offset + i];
        best = i;
      }
    }
    y[r] = best;
  }
}
