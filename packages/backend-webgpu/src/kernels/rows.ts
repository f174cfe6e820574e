/**
 * Row-wise kernels: rmsNorm, softmax and argmax over the last dimension (one workgroup per row), and
 * the row-wise training kernels: rmsNorm's backward and the fused cross-entropy.
 */
import type {
  ArgmaxAttrs,
  CrossEntropyAttrs,
  CrossEntropyOutputs,
  CrossEntropySpecs,
  OutputSpec,
  RmsNormAttrs,
  RmsNormGradients,
  RmsNormGradientSpecs,
  SoftmaxAttrs,
  TensorView,
} from '@diff-transformer/core';
import type { Runtime } from '../device/runtime.js';
import type { GpuStorage } from '../device/storage.js';
import { grid, params } from '../shaders/common.js';
import { ARGMAX, CROSS_ENTROPY, RMS_NORM, RMS_NORM_BACKWARD, SOFTMAX } from '../shaders/rows.js';
import { columnSumsInto, reduceInto } from './reduce.js';
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

/** dx per row, then dWeight = Σ_rows dy·x·r⁻¹ over the kept r⁻¹ (a fixed-order column sum). */
export function rmsNormBackward(
  rt: Runtime,
  x: TensorView,
  weight: TensorView | null,
  dy: TensorView,
  attrs: RmsNormAttrs,
  out: RmsNormGradientSpecs,
): RmsNormGradients {
  const dx = outputFor(rt, out.dx);
  const dWeight = out.dWeight && weight ? outputFor(rt, out.dWeight) : null;
  const { rows, width } = rowsOf(x);
  const inverseRms = rt.allocate(Math.max(rows, 1) * 4, 'float32');
  try {
    rt.dispatch(
      RMS_NORM_BACKWARD,
      [storageOf(x), weight ? storageOf(weight) : rt.absent, storageOf(dy), dx, inverseRms],
      params()
        .u(rows, width, weight ? 1 : 0)
        .f(attrs.eps).words,
      grid(rows),
    );
    if (dWeight) {
      const source = { rows, width, rowStride: width, columnStride: 1, offset: 0 };
      columnSumsInto(rt, { ...source, x: storageOf(dy), y: storageOf(x), rowScale: inverseRms }, dWeight);
    }
  } finally {
    rt.free(inverseRms);
  }
  return { dx, dWeight };
}

/** One workgroup per row (loss and gradient), then the rows' losses summed in a fixed order × scale. */
export function crossEntropy(
  rt: Runtime,
  logits: TensorView,
  targets: TensorView,
  attrs: CrossEntropyAttrs,
  out: CrossEntropySpecs,
): CrossEntropyOutputs {
  const loss = outputFor(rt, out.loss);
  const dLogits = outputFor(rt, out.dLogits);
  const [rows, width] = logits.shape;
  const rowLoss = rt.allocate(Math.max(rows, 1) * 4, 'float32');
  try {
    rt.dispatch(
      CROSS_ENTROPY,
      [storageOf(logits), storageOf(targets), dLogits, rowLoss],
      params().u(rows, width, attrs.ignoreIndex).f(attrs.scale).words,
      grid(rows),
    );
    reduceInto(rt, rowLoss, rows, false, attrs.scale, loss);
  } finally {
    rt.free(rowLoss);
  }
  return { loss, dLogits };
}
