import { ShapeError, formatShape } from '../errors.js';
import { shapesEqual } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertFloat, assertSameDType, kernelFor, wrapOutput } from './dispatch.js';

/** a + b, same shapes (the residual connection). */
export function add(a: Tensor, b: Tensor): Tensor {
  const { backend, impl } = kernelFor('add', [a, b]);
  assertFloat('add a', a);
  assertSameDType('add b', a, b);
  if (!shapesEqual(a.shape, b.shape)) throw new ShapeError('add b', formatShape(a.shape), b.shape, 'shapes must match');
  const out = { shape: a.shape, dtype: a.dtype };
  return wrapOutput(backend, impl(a, b, {}, out), out);
}

/** SwiGLU gating: silu(gate) · up, same shapes. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  const { backend, impl } = kernelFor('swiglu', [gate, up]);
  assertFloat('swiglu gate', gate);
  assertSameDType('swiglu up', gate, up);
  if (!shapesEqual(gate.shape, up.shape)) {
    throw new ShapeError('swiglu up', formatShape(gate.shape), up.shape, 'shapes must match');
  }
  const out = { shape: gate.shape, dtype: gate.dtype };
  return wrapOutput(backend, impl(gate, up, {}, out), out);
}

/** σ(x) = 1 / (1 + e^(−x)), elementwise. */
export function sigmoid(x: Tensor): Tensor {
  const { backend, impl } = kernelFor('sigmoid', [x]);
  assertFloat('sigmoid x', x);
  const out = { shape: x.shape, dtype: x.dtype };
  return wrapOutput(backend, impl(x, {}, out), out);
}
