import type { Backend, KernelName, Kernels, OutputSpec, StorageHandle } from '../backend/kernels.js';
import { BackendMismatchError, DTypeError, UnsupportedKernelError } from '../errors.js';
import type { DType } from '../tensor/dtype.js';
import { isFloatDType } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';

/**
 * Finds the kernel for the inputs' backend: every input must live on one backend (moving is
 * explicit), no input may be disposed (reading `.backend` throws then), and the backend must
 * implement the kernel for the first input's dtype.
 */
export function kernelFor<K extends KernelName>(
  kernel: K,
  inputs: ReadonlyArray<Tensor | null | undefined>,
): { backend: Backend; impl: Kernels[K] } {
  const present = inputs.filter((t): t is Tensor => t != null);
  const backend = present[0].backend;
  for (const t of present) {
    const other = t.backend;
    if (other !== backend) throw new BackendMismatchError(kernel, backend.name, other.name);
  }
  const impl = backend.kernels[kernel];
  if (!impl) throw new UnsupportedKernelError(kernel, backend.name, 'the backend does not implement it');
  const support = backend.supports?.(kernel, present[0].dtype) ?? true;
  if (support !== true) throw new UnsupportedKernelError(kernel, backend.name, support);
  return { backend, impl: impl.bind(backend.kernels) as Kernels[K] };
}

/** Wraps a storage a kernel produced as a tensor of the output spec. */
export function wrapOutput(backend: Backend, handle: StorageHandle, out: OutputSpec): Tensor {
  return Tensor.fromStorage(backend, handle, out.shape, out.dtype);
}

export function assertFloat(what: string, t: Tensor): void {
  if (!isFloatDType(t.dtype)) throw new DTypeError(what, 'float32 | float16 | bfloat16', t.dtype);
}

export function assertDType(what: string, t: Tensor, dtype: DType): void {
  if (t.dtype !== dtype) throw new DTypeError(what, dtype, t.dtype);
}

export function assertSameDType(what: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype) throw new DTypeError(what, a.dtype, b.dtype);
}
