/** Row-wise kernels: rmsNorm, softmax and argmax over the last dimension (one workgroup per row). */
import type { ArgmaxAttrs, OutputSpec, RmsNormAttrs, SoftmaxAttrs, TensorView } from '@diff-transformer/core';
import type { Runtime } from '../device/runtime.js';
import type { GpuStorage } from '../device/storage.js';
import { grid, params } from '../shaders/common.js';
import { ARGMAX, RMS_NORM, SOFTMAX } from '../shaders/rows.js';
import { count, outputFor, storageOf } from './storage.js';

function rowsOf(x: TensorView): { rows: number; width: number } {
  const width = x.shape[x.shape.length - 1] ?? 1;
  return { rows: width === 0 ? 0 : count(x) / width, width };
}

export function rmsNorm(
  rt: Runtime,
  x: TensorView,
  weight: TensorView | null,
  attrs: RmsNormAttrs,
  out: OutputSpec,
): GpuStorage {
  const y = outputFor(rt, out);
  const { rows, width } = rowsOf(x);
  const w = weight ? storageOf(weight) : rt.absent;
  rt.dispatch(
    RMS_NORM,
    [storageOf(x), w, y],
    params()
      .u(rows, width, weight ? 1 : 0)
      .f(attrs.eps).words,
    grid(rows),
  );
  return y;
}

export function softmax(rt: Runtime, x: TensorView, attrs: SoftmaxAttrs, out: OutputSpec): GpuStorage {
  const y = outputFor(rt, out);
  const { rows, width } = rowsOf(x);
  rt.dispatch(
    SOFTMAX,
    [storageOf(x), y],
    params()
      .u(rows, width)
      .f(1 / attrs.temperature).words,
    grid(rows),
  );
  return y;
}

export function argmax(rt: Runtime, x: TensorView, _attrs: ArgmaxAttrs, out: OutputSpec): GpuStorage {
  const y = outputFor(rt, out);
  const { rows, width } = rowsOf(x);
  rt.dispatch(ARGMAX, [storageOf(x), y], params().u(rows, width).words, grid(rows));
  return y;
}
