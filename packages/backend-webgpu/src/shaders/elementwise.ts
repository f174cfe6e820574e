/**
 * Elementwise shaders: add (residual), swiglu (feed-forward gate), sigmoid (V2's per-token λ), and
 * exp, mul, scale (DIFF V1's λ re-parameterisation, gradient rules). One thread per element on a flat
 * grid.
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
