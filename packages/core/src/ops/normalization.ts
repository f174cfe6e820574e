import { ArgumentError, ShapeError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertFloat, kernelFor, wrapOutput } from './dispatch.js';

/** RMSNorm over the last dimension: x / √(mean(x²) + eps) · weight (weight null means 1). */
export function rmsNorm(x: Tensor, weight: Tensor | null, eps: number): Tensor {
  const { backend, impl } = kernelFor('rmsNorm', [x, weight]);
  assertFloat('rmsNorm x', x);
  if (x.rank < 1) throw new ShapeError('rmsNorm x', '[..., D]', x.shape);
  const d = x.shape[x.rank - 1];
  if (weight) {
    assertFloat('rmsNorm weight', weight);
    if (weight.rank !== 1 || weight.shape[0] !== d) throw new ShapeError('rmsNorm weight', `[${d}]`, weight.shape);
  }
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new ArgumentError('rmsNorm eps', 'a finite number ≥ 0', eps);
  const out = { shape: x.shape, dtype: x.dtype };
  return wrapOutput(backend, impl(x, weight, { eps }, out), out);
}
