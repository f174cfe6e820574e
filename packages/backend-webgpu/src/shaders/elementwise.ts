/**
 * Elementwise shaders: add (residual), swiglu (feed-forward gate), sigmoid (V2's per-token λ), and
 * exp, mul, scale (DIFF V1's λ re-parameterisation, gradient rules), swiglu's backward and the AdamW
 * step (in place). One thread per element on a flat grid.
 *
 * σ(x) is computed from e = exp(−|x|), which never overflows: σ(x) = 1/(1+e) for x ≥ 0 and e/(1+e)
 * for x < 0 (WGSL leaves exp's overflow to infinity undefined, so the CPU backend's
 * g / (1 + e^(−g)) cannot be copied as it is).
 */
import type { Program } from '../device/pipelines.js';
import { ELEMENTWISE_WORKGROUP, FLAT_BUILTINS, FLAT_WORKGROUP } from './common.js';

const SIGMOID = /* wgsl */ `
fn sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}`;

function binary(name: string, expression: string): Program {
  return {
    key: `elementwise/${name}`,
    layout: 'rrw',
    code: () => /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${SIGMOID}
@compute @workgroup_size(${ELEMENTWISE_WORKGROUP})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  let i = group * ${ELEMENTWISE_WORKGROUP}u + lid;
  if (i >= p.n) { return; }
  y[i] = ${expression};
}`,
  };
}

export const ADD = binary('add', 'a[i] + b[i]');

/** silu(gate) · up = gate · σ(gate) · up. */
export const SWIGLU = binary('swiglu', 'a[i] * sigmoid(a[i]) * b[i]');

export const MUL = binary('mul', 'a[i] * b[i]');

/** y = f(x), with the uniform block's alpha and beta available to the expression. */
function unary(name: string, expression: string): Program {
  return {
    key: `elementwise/${name}`,
    layout: 'rw',
    code: () => /* wgsl */ `
struct Params { n: u32, alpha: f32, beta: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${SIGMOID}
@compute @workgroup_size(${ELEMENTWISE_WORKGROUP})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  let i = group * ${ELEMENTWISE_WORKGROUP}u + lid;
  if (i >= p.n) { return; }
  y[i] = ${expression};
}`,
  };
}

export const SIGMOID_PROGRAM = unary('sigmoid', 'sigmoid(x[i])');

export const EXP = unary('exp', 'exp(x[i])');

export const SCALE = unary('scale', 'p.alpha * x[i] + p.beta');

/** dGate = dy·up·(s + gate·s·(1 − s)), dUp = dy·gate·s with s = σ(gate). */
export const SWIGLU_BACKWARD: Program = {
  key: 'elementwise/swigluBackward',
  layout: 'rrrww',
  code: () => /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dGate: array<f32>;
@group(0) @binding(5) var<storage, read_write> dUp: array<f32>;
${SIGMOID}
@compute @workgroup_size(${ELEMENTWISE_WORKGROUP})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  let i = group * ${ELEMENTWISE_WORKGROUP}u + lid;
  if (i >= p.n) { return; }
  let g = gate[i];
  let s = sigmoid(g);
  dGate[i] = dy[i] * up[i] * (s + g * s * (1.0 - s));
  dUp[i] = dy[i] * g * s;
}`,
};

/**
 * One AdamW step in place on param, m and v (torch.optim.AdamW): g = gradScale·grad,
 * m ← β1·m + (1 − β1)·g, v ← β2·v + (1 − β2)·g², param ← param·decay − stepSize·m/(√v·inverseRoot + eps),
 * where 1 − β1, 1 − β2, decay = 1 − lr·weightDecay, stepSize = lr/(1 − β1ᵗ) and inverseRoot = 1/√(1 − β2ᵗ)
 * come from the host in float64. Bindings: param, grad, m, v.
 */
export const ADAMW: Program = {
  key: 'elementwise/adamw',
  layout: 'wrww',
  code: () => /* wgsl */ `
struct Params {
  n: u32, beta1: f32, beta2: f32, rest1: f32, rest2: f32, eps: f32,
  decay: f32, stepSize: f32, inverseRoot: f32, gradScale: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@compute @workgroup_size(${ELEMENTWISE_WORKGROUP})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  let i = group * ${ELEMENTWISE_WORKGROUP}u + lid;
  if (i >= p.n) { return; }
  let g = p.gradScale * grad[i];
  let m1 = p.beta1 * m[i] + p.rest1 * g;
  let v1 = p.beta2 * v[i] + p.rest2 * g * g;
  m[i] = m1;
  v[i] = v1;
  param[i] = param[i] * p.decay - p.stepSize * m1 / (sqrt(v1) * p.inverseRoot + p.eps);
}`,
};
