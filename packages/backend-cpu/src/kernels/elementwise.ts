/**
 * The elementwise kernels: add (residual), swiglu (feed-forward gate), sigmoid (V2's per-token λ),
 * exp, mul and scale (DIFF V1's λ re-parameterisation and the gradient rules), and swiglu's backward.
 */
import type {
  AddAttrs,
  ExpAttrs,
  MulAttrs,
  OutputSpec,
  ScaleAttrs,
  SigmoidAttrs,
  SwigluAttrs,
  SwigluGradientSpecs,
  TensorView,
} from '@diff-transformer/core';
import { floats } from '../storage.js';

export function add(a: TensorView, b: TensorView, _attrs: AddAttrs, _out: OutputSpec, y: Float32Array): void {
  const x = floats(a);
  const z = floats(b);
  for (let i = 0; i < y.length; i++) y[i] = x[i] + z[i];
}

/** silu(gate) · up with silu(g) = g · σ(g) = g / (1 + e^(−g)). */
export function swiglu(gate: TensorView, up: TensorView, _attrs: SwigluAttrs, _out: OutputSpec, y: Float32Array): void {
  const g = floats(gate);
  const u = floats(up);
  // For g → −∞, e^(−g) overflows to Infinity and g / Infinity is −0: the correct limit, no NaN.
  for (let i = 0; i < y.length; i++) y[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
}

export function sigmoid(x: TensorView, _attrs: SigmoidAttrs, _out: OutputSpec, y: Float32Array): void {
  const input = floats(x);
  for (let i = 0; i < y.length; i++) y[i] = 1 / (1 + Math.exp(-input[i]));
}

export function exp(x: TensorView, _attrs: ExpAttrs, _out: OutputSpec, y: Float32Array): void {
  const input = floats(x);
  for (let i = 0; i < y.length; i++) y[i] = Math.exp(input[i]);
}

export function mul(a: TensorView, b: TensorView, _attrs: MulAttrs, _out: OutputSpec, y: Float32Array): void {
  const x = floats(a);
  const z = floats(b);
  for (let i = 0; i < y.length; i++) y[i] = x[i] * z[i];
}

/** alpha · x + beta, rounded once per operation as float32 code would. */
export function scale(x: TensorView, attrs: ScaleAttrs, _out: OutputSpec, y: Float32Array): void {
  const input = floats(x);
  const alpha = Math.fround(attrs.alpha);
  const beta = Math.fround(attrs.beta);
  for (let i = 0; i < y.length; i++) y[i] = Math.fround(alpha * input[i]) + beta;
}

/**
 * The gradients of silu(gate) · up with s = σ(gate): dGate = dy · up · (s + gate · s · (1 − s)),
 * dUp = dy · gate · s. Written as s + gate·s·(1 − s) rather than s·(1 + gate·(1 − s)): where σ
 * saturates to 0 the latter is 0 · ∞.
 */
export function swigluBackward(
  gate: TensorView,
  up: TensorView,
  dy: TensorView,
  _attrs: SwigluAttrs,
  _out: SwigluGradientSpecs,
  grads: { dGate: Float32Array; dUp: Float32Array },
): void {
  const g = floats(gate);
  const u = floats(up);
  const d = floats(dy);
  const { dGate, dUp } = grads;
  for (let i = 0; i < dGate.length; i++) {
    const s = 1 / (1 + Math.exp(-g[i]));
    dGate[i] = d[i] * u[i] * (s + g[i] * s * (1 - s));
    dUp[i] = d[i] * g[i] * s;
  }
}
