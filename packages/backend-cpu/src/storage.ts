/**
 * Storage of the CPU backend: a tensor's bytes are a plain typed array, Float32Array for float32 and
 * Int32Array for int32. There is no device, so a handle is the data itself and kernels read and write
 * it directly.
 */
import type { DType, OutputSpec, TensorView } from '@diff-transformer/core';
import { DTypeError, sizeOf } from '@diff-transformer/core';

export type CpuStorage = Float32Array | Int32Array;

/** The dtypes this backend can hold. float16/bfloat16 have no typed array in every runtime we target. */
export const CPU_DTYPES = ['float32', 'int32'] as const satisfies readonly DType[];

/** A zero-filled array of `size` elements of `dtype`. */
export function allocate(dtype: DType, size: number): CpuStorage {
  assertStorable(dtype);
  return dtype === 'int32' ? new Int32Array(size) : new Float32Array(size);
}

/** The array a kernel writes its result into, sized from the output spec core computed. */
export function allocateOutput(out: OutputSpec): CpuStorage {
  return allocate(out.dtype, sizeOf(out.shape));
}

/** A float32 output; the float kernels produce nothing else on this backend. */
export function allocateFloatOutput(out: OutputSpec): Float32Array {
  return new Float32Array(sizeOf(out.shape));
}

/** An input's data as float32 (core has checked the dtype; the backend stores no other float type). */
export function floats(view: TensorView): Float32Array {
  return view.storage as Float32Array;
}

export function ints(view: TensorView): Int32Array {
  return view.storage as Int32Array;
}

/**
 * Core refuses unstorable dtypes when a tensor is created, but `Tensor.to()` uploads whatever dtype the
 * source tensor had; refusing here keeps a float16 tensor from silently becoming a mislabelled float32.
 */
export function assertStorable(dtype: DType): void {
  if (dtype !== 'float32' && dtype !== 'int32') {
    throw new DTypeError("backend 'cpu' storage", CPU_DTYPES.join(' | '), dtype);
  }
}
