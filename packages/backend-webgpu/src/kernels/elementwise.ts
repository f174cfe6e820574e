/**
 * The elementwise kernels: add (residual), swiglu (feed-forward gate), sigmoid (V2's per-token λ),
 * exp, mul and scale (DIFF V1's λ, gradient rules), swiglu's backward and the AdamW step.
 */
import type {
  AdamWAttrs,
  AddAttrs,
  ExpAttrs,
  MulAttrs,
  OutputSpec,
  ScaleAttrs,
  SigmoidAttrs,
  SwigluAttrs,
  SwigluGradients,
  SwigluGradientSpecs,
  TensorView,
} from '@diff-transformer/core';
import type { Runtime } from '../device/runtime.js';
import type { GpuStorage } from '../device/storage.js';
import { elementGrid, params } from '../shaders/common.js';
import { ADAMW, ADD, EXP, MUL, SCALE, SIGMOID_PROGRAM, SWIGLU, SWIGLU_BACKWARD } from '../shaders/elementwise.js';
import { count, outputFor, storageOf } from './storage.js';

export function add(rt: Runtime, a: TensorView, b: TensorView, _attrs: AddAttrs, out: OutputSpec): GpuStorage {
  const y = outputFor(rt, out);
  const n = count(a);
  rt.dispatch(ADD, [storageOf(a), storageOf(b), y], params().u(n).words, elementGrid(n));
  return y;
}

export function swiglu(
  rt: Runtime,
  gate: TensorView,
  up: TensorView,
  _attrs: SwigluAttrs,
  out: OutputSpec,
): GpuStorage {
  const y = outputFor(rt, out);
  const n = count(gate);
  rt.dispatch(SWIGLU, [storageOf(gate), storageOf(up), y], params().u(n).words, elementGrid(n));
  return y;
}

export function sigmoid(rt: Runtime, x: TensorView, _attrs: SigmoidAttrs, out: OutputSpec): GpuStorage {
  const y = outputFor(rt, out);
  const n = count(x);
  rt.dispatch(SIGMOID_PROGRAM, [storageOf(x), y], params().u(n).f(0, 0).words, elementGrid(n));
  return y;
}

export function exp(rt: Runtime, x: TensorView, _attrs: ExpAttrs, out: OutputSpec): GpuStorage {
  const y = outputFor(rt, out);
  const n = count(x);
  rt.dispatch(EXP, [storageOf(x), y], params().u(n).f(0, 0).words, elementGrid(n));
  return y;
}

export function mul(rt: Runtime, a: TensorView, b: TensorView, _attrs: MulAttrs, out: OutputSpec): GpuStorage {
  const y = outputFor(rt, out);
  const n = count(a);
  rt.dispatch(MUL, [storageOf(a), storageOf(b), y], params().u(n).words, elementGrid(n));
  return y;
}

export function scale(rt: Runtime, x: TensorView, attrs: ScaleAttrs, out: OutputSpec): GpuStorage {
  const y = outputFor(rt, out);
  const n = count(x);
  rt.dispatch(SCALE, [storageOf(x), y], params().u(n).f(attrs.alpha, attrs.beta).words, elementGrid(n));
  return y;
}

export function swigluBackward(
  rt: Runtime,
  gate: TensorView,
  up: TensorView,
  dy: TensorView,
  _attrs: SwigluAttrs,
  out: SwigluGradientSpecs,
): SwigluGradients {
  const dGate = outputFor(rt, out.dGate);
  const dUp = outputFor(rt, out.dUp);
  const n = count(gate);
  rt.dispatch(
    SWIGLU_BACKWARD,
    [storageOf(gate), storageOf(up), storageOf(dy), dGate, dUp],
    params().u(n).words,
    elementGrid(n),
  );
  return { dGate, dUp };
}

/** In place on param, m and v; the bias corrections are computed here in float64. */
export function adamw(
  rt: Runtime,
  param: TensorView,
  grad: TensorView,
  m: TensorView,
  v: TensorView,
  attrs: AdamWAttrs,
) {
  const n = count(param);
  const { learningRate: lr, beta1, beta2, eps, weightDecay, step, gradScale } = attrs;
  const words = params()
    .u(n)
    .f(
      beta1,
      beta2,
      1 - beta1,
      1 - beta2,
      eps,
      1 - lr * weightDecay,
      lr / (1 - beta1 ** step),
      1 / Math.sqrt(1 - beta2 ** step),
      gradScale,
    ).words;
  rt.dispatch(ADAMW, [storageOf(param), storageOf(grad), storageOf(m), storageOf(v)], words, elementGrid(n));
}
