import type { OutputSpec } from '../backend/kernels.js';
import { ArgumentError, ShapeError, formatShape } from '../errors.js';
import { shapesEqual } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertFloat, assertSameDType, wrapOutput } from './dispatch.js';
import { runOp, runWithoutGradient } from './run.js';

function assertSameShape(what: string, a: Tensor, b: Tensor): void {
  if (!shapesEqual(a.shape, b.shape)) throw new ShapeError(what, formatShape(a.shape), b.shape, 'shapes must match');
}

/** a + b, same shapes (the residual connection). */
export function add(a: Tensor, b: Tensor): Tensor {
  return runOp('add', [a, b], {}, ({ kernel }) => {
    const { backend, impl } = kernel('add');
    assertFloat('add a', a);
    assertSameDType('add b', a, b);
    assertSameShape('add b', a, b);
    const out = { shape: a.shape, dtype: a.dtype };
    return { y: wrapOutput(backend, impl(a, b, {}, out), out) };
  });
}

/** SwiGLU gating: silu(gate) · up, same shapes. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  return runOp('swiglu', [gate, up], {}, ({ kernel }) => {
    const { backend, impl } = kernel('swiglu');
    assertFloat('swiglu gate', gate);
    assertSameDType('swiglu up', gate, up);
    assertSameShape('swiglu up', gate, up);
    const out = { shape: gate.shape, dtype: gate.dtype };
    return { y: wrapOutput(backend, impl(gate, up, {}, out), out) };
  });
}

/** The gradients of swiglu(gate, up) for its output gradient dy (see SwigluGradientSpecs). */
export function swigluBackward(gate: Tensor, up: Tensor, dy: Tensor): { dGate: Tensor; dUp: Tensor } {
  return runWithoutGradient('swigluBackward', [gate, up, dy], ({ kernel }) => {
    const { backend, impl } = kernel('swigluBackward');
    assertFloat('swigluBackward gate', gate);
    assertSameDType('swigluBackward up', gate, up);
    assertSameDType('swigluBackward dy', gate, dy);
    assertSameShape('swigluBackward up', gate, up);
    assertSameShape('swigluBackward dy', gate, dy);
    const spec: OutputSpec = { shape: gate.shape, dtype: gate.dtype };
    const r = impl(gate, up, dy, {}, { dGate: spec, dUp: spec });
    return { dGate: wrapOutput(backend, r.dGate, spec), dUp: wrapOutput(backend, r.dUp, spec) };
  });
}

/** σ(x) = 1 / (1 + e^(−x)), elementwise. */
export function sigmoid(x: Tensor): Tensor {
  return runOp('sigmoid', [x], {}, ({ kernel }) => {
    const { backend, impl } = kernel('sigmoid');
    assertFloat('sigmoid x', x);
    const out = { shape: x.shape, dtype: x.dtype };
    return { y: wrapOutput(backend, impl(x, {}, out), out) };
  });
}

/** eˣ, elementwise. */
export function exp(x: Tensor): Tensor {
  return runOp('exp', [x], {}, ({ kernel }) => {
    const { backend, impl } = kernel('exp');
    assertFloat('exp x', x);
    const out = { shape: x.shape, dtype: x.dtype };
    return { y: wrapOutput(backend, impl(x, {}, out), out) };
  });
}

/** a · b, elementwise, same shapes. */
export function mul(a: Tensor, b: Tensor): Tensor {
  return runOp('mul', [a, b], {}, ({ kernel }) => {
    const { backend, impl } = kernel('mul');
    assertFloat('mul a', a);
    assertSameDType('mul b', a, b);
    assertSameShape('mul b', a, b);
    const out = { shape: a.shape, dtype: a.dtype };
    return { y: wrapOutput(backend, impl(a, b, {}, out), out) };
  });
}

/** alpha · x + beta, elementwise. */
export function scale(x: Tensor, alpha: number, beta = 0): Tensor {
  if (!Number.isFinite(alpha) || !Number.isFinite(beta)) {
    throw new ArgumentError('scale', 'finite alpha and beta', `alpha ${alpha}, beta ${beta}`);
  }
  return runOp('scale', [x], { alpha, beta }, ({ kernel }) => {
    const { backend, impl } = kernel('scale');
    assertFloat('scale x', x);
    const out = { shape: x.shape, dtype: x.dtype };
    return { y: wrapOutput(backend, impl(x, { alpha, beta }, out), out) };
  });
}
