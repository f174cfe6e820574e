import { ArgumentError, ShapeError, formatShape } from '../errors.js';
import { shapesEqual } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertFloat, assertSameDType, wrapOutput } from './dispatch.js';
import { runOp, runWithoutGradient } from './run.js';

/** RMSNorm over the last dimension: x / √(mean(x²) + eps) · weight (weight null means 1). */
export function rmsNorm(x: Tensor, weight: Tensor | null, eps: number): Tensor {
  return runOp('rmsNorm', [x, weight], { eps }, ({ kernel }) => {
    const { backend, impl } = kernel('rmsNorm');
    checkRmsNorm('rmsNorm', x, weight, eps);
    const out = { shape: x.shape, dtype: x.dtype };
    return { y: wrapOutput(backend, impl(x, weight, { eps }, out), out) };
  });
}

/** The gradients of rmsNorm(x, weight, eps) for its output gradient dy (see RmsNormGradientSpecs). */
export function rmsNormBackward(
  x: Tensor,
  weight: Tensor | null,
  dy: Tensor,
  eps: number,
): { dx: Tensor; dWeight: Tensor | null } {
  return runWithoutGradient('rmsNormBackward', [x, weight, dy], ({ kernel }) => {
    const { backend, impl } = kernel('rmsNormBackward');
    checkRmsNorm('rmsNormBackward', x, weight, eps);
    assertSameDType('rmsNormBackward dy', x, dy);
    if (!shapesEqual(dy.shape, x.shape)) throw new ShapeError('rmsNormBackward dy', formatShape(x.shape), dy.shape);
    const dx = { shape: x.shape, dtype: x.dtype };
    const dWeight = weight ? { shape: weight.shape, dtype: weight.dtype } : null;
    const r = impl(x, weight, dy, { eps }, { dx, dWeight });
    return {
      dx: wrapOutput(backend, r.dx, dx),
      dWeight: dWeight && wrapOutput(backend, r.dWeight, dWeight),
    };
  });
}

function checkRmsNorm(op: string, x: Tensor, weight: Tensor | null, eps: number): void {
  assertFloat(`${op} x`, x);
  if (x.rank < 1) throw new ShapeError(`${op} x`, '[..., D]', x.shape);
  const d = x.shape[x.rank - 1];
  if (weight) {
    assertFloat(`${op} weight`, weight);
    if (weight.rank !== 1 || weight.shape[0] !== d) throw new ShapeError(`${op} weight`, `[${d}]`, weight.shape);
  }
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new ArgumentError(`${op} eps`, 'a finite number ≥ 0', eps);
}
