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
  return sameShapeBinary('add', a, b, ['a', 'b']);
}

/** SwiGLU gating: silu(gate) · up, same shapes. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  return sameShapeBinary('swiglu', gate, up, ['gate', 'up']);
}

/** An elementwise op of two float tensors of one shape and dtype. */
function sameShapeBinary(op: 'add' | 'mul' | 'swiglu', a: Tensor, b: Tensor, names: readonly [string, string]): Tensor {
  return runOp(op, [a, b], {}, ({ kernel }) => {
    const { backend, impl } = kernel(op);
    assertFloat(`${op} ${names[0]}`, a);
    assertSameDType(`${op} ${names[1]}`, a, b);
    assertSameShape(`${op} ${names[1]}`, a, b);
    const out = { shape: a.shape, dtype: a.dtype };
    return { y: wrapOutput(backend, impl(a, b, {}, out), out) };
  });
}

/** An elementwise op of one float tensor. */
function unary(op: 'sigmoid' | 'exp', x: Tensor): Tensor {
  return runOp(op, [x], {}, ({ kernel }) => {
    const { backend, impl } = kernel(op);
    assertFloat(`${op} x`, x);
    const out = { shape: x.shape, dtype: x.dtype };
    return { y: wrapOutput(backend, impl(x, {}, out), out) };
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
  return unary('sigmoid', x);
}

/** eˣ, elementwise. */
export function exp(x: Tensor): Tensor {
  return unary('exp', x);
}

/** a · b, elementwise, same shapes. */
export function mul(a: Tensor, b: Tensor): Tensor {
  return sameShapeBinary('mul', a, b, ['a', 'b']);
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
