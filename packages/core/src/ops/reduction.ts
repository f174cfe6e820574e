import type { Tensor } from '../tensor/tensor.js';
import { assertFloat, wrapOutput } from './dispatch.js';
import { runWithoutGradient } from './run.js';

/** Σ x² over every element → [1] float32 (global-norm clipping; deterministic, see SumSquaresAttrs). */
export function sumSquares(x: Tensor): Tensor {
  return runWithoutGradient('sumSquares', [x], ({ kernel }) => {
    const { backend, impl } = kernel('sumSquares');
    assertFloat('sumSquares x', x);
    const out = { shape: [1], dtype: 'float32' as const };
    return wrapOutput(backend, impl(x, {}, out), out);
  });
}
