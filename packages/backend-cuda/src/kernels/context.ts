/** What every kernel of the CUDA backend needs from the backend: the addon, output allocation, launching. */
import type { OutputSpec } from '@diff-transformer/core';
import type { CudaAddon } from '../addon.js';
import type { CudaStorage } from '../storage.js';

export interface KernelContext {
  readonly addon: CudaAddon;
  /** A new device storage for a kernel's output (uninitialised; the kernel writes all of it). */
  output(out: OutputSpec): CudaStorage;
  /**
   * Runs the launch for `kernel`; if it throws, frees `out` (when given) and rethrows as a DeviceError.
   * Returns `out` for the kernels that produce one.
   */
  launch<S extends CudaStorage | null>(kernel: string, out: S, enqueue: () => void): S;
  /** Frees a storage this backend handed out (an output of a launch that failed). */
  release(storage: CudaStorage): void;
}
