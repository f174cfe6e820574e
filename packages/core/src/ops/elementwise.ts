import type { OutputSpec } from '../backend/kernels.js';
import { recordingTape } from '../autograd/tape.js';
import { ArgumentError, ShapeError, formatShape } from '../errors.js';
import { shapesEqual } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertFloat, assertSameDType, kernelFor, wrapOutput } from './dispatch.js';

function assertSameShape(what: string, a: Tensor, b: Tensor): void {
  if (!shapesEqual(a.shape, b.shape)) throw new ShapeError(what, formatShape(a.shape), b.shape, 'shapes must match');
}

/** a + b, same shapes (the residual connection). Gradient: dy to both. */
export function add(a: Tensor, b: Tensor): Tensor {
  const { backend, impl } = kernelFor('add', [a, b]);
  assertFloat('add a', a);
  assertSameDType('add b', a, b);
  assertSameShape('add b', a, b);
  const out = { shape: a.shape, dtype: a.dtype };
  const y = wrapOutput(backend, impl(a, b, {}, out), out);
  recordingTape([a, b])?.record('add', [a, b], [y], ([dy]) => [dy, dy]);
  return y;
}

/** SwiGLU gating: silu(gate) · up, same shapes. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  const { backend, impl } = kernelFor('swiglu', [gate, up]);
  assertFloat('swiglu gate', gate);
  assertSameDType('swiglu up', gate, up);
  assertSameShape('swiglu up', gate, up);
  const out = { shape: gate.shape, dtype: gate.dtype };
  const y = wrapOutput(backend, impl(gate, up, {}, out), out);
  const tape = recordingTape([gate, up]);
  if (tape) {
    const [g, u] = [tape.save(gate), tape.save(up)];
    tape.record('swiglu', [gate, up], [y], ([dy]) => {
      if (!dy) return [null, null];
      const { dGate, dUp } = swigluBackward(g, u, dy);
      return [dGate, dUp];
    });
  }
  return y;
}

/** The gradients of swiglu(gate, up) for its output gradient dy (see SwigluGradientSpecs). */
export function swigluBackward(gate: Tensor, up: Tensor, dy: Tensor): { dGate: Tensor; dUp: Tensor } {
  const { backend, impl } = kernelFor('swigluBackward', [gate, up, dy]);
  assertFloat('swigluBackward gate', gate);
  assertSameDType('swigluBackward up', gate, up);
  assertSameDType('swigluBackward dy', gate, dy);
  assertSameShape('swigluBackward up', gate, up);
  assertSameShape('swigluBackward dy', gate, dy);
  const spec: OutputSpec = { shape: gate.shape, dtype: gate.dtype };
  const r = impl(gate, up, dy, {}, { dGate: spec, dUp: spec });
  return { dGate: wrapOutput(backend, r.dGate, spec), dUp: wrapOutput(backend, r.dUp, spec) };
}

/** σ(x) = 1 / (1 + e^(−x)), elementwise. Gradient: dy · σ · (1 − σ). */
export function sigmoid(x: Tensor): Tensor {
  const { backend, impl } = kernelFor('sigmoid', [x]);
  assertFloat('sigmoid x', x);
  const out = { shape: x.shape, dtype: x.dtype };
  const y = wrapOutput(backend, impl(x, {}, out), out);
  const tape = recordingTape([x]);
  if (tape) {
    const s = tape.save(y);
    tape.record('sigmoid', [x], [y], ([dy]) => [dy && mul(dy, mul(s, scale(s, -1, 1)))]);
  }
  return y;
}

/** eˣ, elementwise. Gradient: dy · eˣ. */
export function exp(x: Tensor): Tensor {
  const { backend, impl } = kernelFor('exp', [x]);
  assertFloat('exp x', x);
  const out = { shape: x.shape, dtype: x.dtype };
  const y = wrapOutput(backend, impl(x, {}, out), out);
  const tape = recordingTape([x]);
  if (tape) {
    const e = tape.save(y);
    tape.record('exp', [x], [y], ([dy]) => [dy && mul(dy, e)]);
  }
  return y;
}

/** a · b, elementwise, same shapes. Gradient: (dy · b, dy · a). */
export function mul(a: Tensor, b: Tensor): Tensor {
  const { backend, impl } = kernelFor('mul', [a, b]);
  assertFloat('mul a', a);
  assertSameDType('mul b', a, b);
  assertSameShape('mul b', a, b);
  const out = { shape: a.shape, dtype: a.dtype };
  const y = wrapOutput(backend, impl(a, b, {}, out), out);
  const tape = recordingTape([a, b]);
  if (tape) {
    const [sa, sb] = [tape.save(a), tape.save(b)];
    tape.record('mul', [a, b], [y], ([dy]) => (dy ? [mul(dy, sb), mul(dy, sa)] : [null, null]));
  }
  return y;
}

/** alpha · x + beta, elementwise. Gradient: alpha · dy. */
export function scale(x: Tensor, alpha: number, beta = 0): Tensor {
  const { backend, impl } = kernelFor('scale', [x]);
  assertFloat('scale x', x);
  if (!Number.isFinite(alpha) || !Number.isFinite(beta)) {
    throw new ArgumentError('scale', 'finite alpha and beta', `alpha ${alpha}, beta ${beta}`);
  }
  const out = { shape: x.shape, dtype: x.dtype };
  const y = wrapOutput(backend, impl(x, { alpha, beta }, out), out);
  recordingTape([x])?.record('scale', [x], [y], ([dy]) => [dy && scale(dy, alpha, 0)]);
  return y;
}
