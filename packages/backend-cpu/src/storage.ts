/**
 * What both engines share about storage: the dtypes the backend holds, and how the TypeScript
 * kernels see a tensor: a typed array, Float32Array for float32 and Int32Array for int32 (the
 * TypeScript engine's own handles, or views of the WebAssembly heap made for the call).
 */
import type { DType, TensorView } from '@diff-transformer/core';
import { DTypeError } from '@diff-transformer/core';

export type CpuStorage = Float32Array | Int32Array;

/** The dtypes this backend can hold. float16/bfloat16 have no typed array in every runtime we target. */
export const CPU_DTYPES = ['float32', 'int32'] as const satisfies readonly DType[];
export type CpuDType = (typeof CPU_DTYPES)[number];

/** A zero-filled array of `size` elements of `dtype`. */
export function allocate(dtype: DType, size: number): CpuStorage {
  assertStorable(dtype);
  return dtype === 'int32' ? new Int32Array(size) : new Float32Array(size);
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
export function assertStorable(dtype: DType): asserts dtype is CpuDType {
  if (dtype !== 'float32' && dtype !== 'int32') {
    throw new DTypeError("backend 'cpu' storage", CPU_DTYPES.join(' | '), dtype);
  }
}
