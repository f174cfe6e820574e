/**
 * Storage of the CUDA backend: a tensor's bytes live in device memory, and the handle core holds is a
 * small object with the device pointer, the element count and the dtype. Views (reshapes) share it.
 */
import type { DType, TensorView } from '@diff-transformer/core';
import { DTypeError, bytesPerElement } from '@diff-transformer/core';

export interface CudaStorage {
  /** Device address (0 for an empty storage, which owns no memory). */
  readonly pointer: number;
  readonly size: number;
  readonly dtype: DType;
}

export const CUDA_DTYPES = ['float32', 'float16', 'bfloat16', 'int32'] as const satisfies readonly DType[];

/** The addon's dtype codes (dtx::DType in native/kernels.h). */
export function dtypeCode(dtype: DType): number {
  switch (dtype) {
    case 'float32':
      return 0;
    case 'float16':
      return 1;
    case 'bfloat16':
      return 2;
    case 'int32':
      return 3;
    default:
      throw new DTypeError("backend 'cuda' storage", CUDA_DTYPES.join(' | '), String(dtype));
  }
}

export function storageOf(view: TensorView): CudaStorage {
  return view.storage as CudaStorage;
}

export function pointerOf(view: TensorView | null | undefined): number {
  return view ? storageOf(view).pointer : 0;
}

export function byteSize(size: number, dtype: DType): number {
  return size * bytesPerElement(dtype);
}
