/** The elementwise kernels: add (residual), swiglu (feed-forward gate), sigmoid (V2's per-token λ). */
import type { AddAttrs, OutputSpec, SigmoidAttrs, SwigluAttrs, TensorView } from '@diff-transformer/core';
import type { Runtime } from '../device/runtime.js';
import type { GpuStorage } from '../device/storage.js';
import { elementGrid, params } from '../shaders/common.js';
import { ADD, SIGMOID_PROGRAM, SWIGLU } from '../shaders/elementwise.js';
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
  rt.dispatch(SIGMOID_PROGRAM, [storageOf(x), y], params().u(n).words, elementGrid(n));
  return y;
}
