import { refuseOnTape } from '../autograd/tape.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertFloat, kernelFor, wrapOutput } from './dispatch.js';

/** Σ x² over every element → [1] float32 (global-norm clipping; deterministic, see SumSquaresAttrs). */
export function sumSquares(x: Tensor): Tensor {
  const { backend, impl } = kernelFor('sumSquares', [x]);
  assertFloat('sumSquares x', x);
  refuseOnTape('sumSquares', [x], 'it measures gradients for clipping');
  const out = { shape: [1], dtype: 'float32' as const };
  return wrapOutput(backend, impl(x, {}, out), out);
}
