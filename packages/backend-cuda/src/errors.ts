/**
 * From what CUDA said to what a user reads: core's typed DeviceError for failures on a working device,
 * and the "unavailable" reason for a device that cannot be used at all.
 */
import { DeviceError } from '@diff-transformer/core';
import type { InitResult } from './addon.js';

/**
 * Errors after which the CUDA context is unusable (CUDA calls them "sticky"): every later call fails the
 * same way until the process ends. Out of memory and bad launch configurations are not among them.
 */
const STICKY = new Set([
  'cudaErrorIllegalAddress',
  'cudaErrorLaunchFailure',
  'cudaErrorIllegalInstruction',
  'cudaErrorMisalignedAddress',
  'cudaErrorInvalidAddressSpace',
  'cudaErrorInvalidPc',
  'cudaErrorHardwareStackError',
  'cudaErrorAssert',
  'cudaErrorLaunchTimeout',
  'cudaErrorECCUncorrectable',
  'cudaErrorContextIsDestroyed',
]);

interface AddonError extends Error {
  cudaError?: number;
  cudaErrorName?: string;
}

/** The CUDA error name an addon error carries, if any. */
export function cudaErrorName(error: unknown): string | undefined {
  return error instanceof Error ? (error as AddonError).cudaErrorName : undefined;
}

/** Wraps an addon error as DeviceError('cuda', out-of-memory | device-lost | internal); others pass through. */
export function toDeviceError(error: unknown, what: string): unknown {
  if (!(error instanceof Error) || (error as AddonError).cudaErrorName === undefined) return error;
  const name = (error as AddonError).cudaErrorName!;
  if (name === 'cudaErrorMemoryAllocation') {
    return new DeviceError(
      'cuda',
      'out-of-memory',
      `${what}: out of device memory (${error.message}); ` +
        `free tensors you no longer need (dispose, tidy) or use smaller shapes — the backend keeps working`,
      error,
    );
  }
  if (STICKY.has(name)) {
    return new DeviceError(
      'cuda',
      'device-lost',
      `${what}: ${error.message}; the CUDA context cannot be used any more, restart the process`,
      error,
    );
  }
  return new DeviceError('cuda', 'internal', `${what}: ${error.message}`, error);
}

function cudaVersion(v: number): string {
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

/** Why init() found no usable device, in one sentence a user can act on. */
export function unavailableReason(init: Extract<InitResult, { ok: false }>): string {
  const needs = `the addon needs an NVIDIA driver for CUDA ${cudaVersion(init.runtimeVersion)} or newer`;
  const detail = init.cudaErrorName
    ? `${init.stage} failed: ${init.message} (${init.cudaErrorName}, error ${init.cudaError})`
    : init.message;
  switch (init.cudaErrorName) {
    case 'cudaErrorInsufficientDriver':
      return init.driverVersion === 0
        ? `no NVIDIA CUDA driver is installed (${detail}); ${needs}`
        : `the NVIDIA CUDA driver supports CUDA ${cudaVersion(init.driverVersion)} only (${detail}); ${needs}`;
    case 'cudaErrorNoDevice':
      return `no CUDA device found (${detail})`;
    default:
      return init.stage === 'compute capability'
        ? `${init.name ?? 'the GPU'}: ${init.message}`
        : `the CUDA device cannot be used: ${detail}`;
  }
}
