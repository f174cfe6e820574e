/** How kernels see tensors: every storage is a GpuStorage; outputs are sized from core's spec. */
import type { OutputSpec, TensorView } from '@diff-transformer/core';
import { sizeOf } from '@diff-transformer/core';
import type { Runtime } from '../device/runtime.js';
import type { GpuStorage } from '../device/storage.js';

export function storageOf(view: TensorView): GpuStorage {
  return view.storage as GpuStorage;
}

/** Elements of a view. */
export function count(view: { readonly shape: readonly number[] }): number {
  return sizeOf(view.shape);
}

/** A fresh (uninitialised) storage for a kernel's output: every dtype here is 4 bytes per element. */
export function outputFor(rt: Runtime, out: OutputSpec): GpuStorage {
  return rt.allocate(sizeOf(out.shape) * 4, out.dtype);
}
