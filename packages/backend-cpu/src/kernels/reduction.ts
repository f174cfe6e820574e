/** sumSquares: Σ x² over every element (global-norm gradient clipping), in doubles, in index order. */
import type { OutputSpec, SumSquaresAttrs, TensorView } from '@diff-transformer/core';
import { floats } from '../storage.js';

export function sumSquares(x: TensorView, _attrs: SumSquaresAttrs, _out: OutputSpec, y: Float32Array): void {
  const input = floats(x);
  let sum = 0;
  for (let i = 0; i < input.length; i++) sum += input[i] * input[i];
  y[0] = sum;
}
