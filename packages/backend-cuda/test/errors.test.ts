import { DeviceError } from '@diff-transformer/core';
import { describe, expect, it } from 'vitest';
import { toDeviceError, unavailableReason } from '../src/errors.js';

function addonError(name: string, code: number, message: string): Error {
  return Object.assign(new Error(message), { cudaErrorName: name, cudaError: code });
}

describe('CUDA errors become typed errors', () => {
  it('out of memory is DEVICE_OUT_OF_MEMORY and says the backend keeps working', () => {
    const e = toDeviceError(
      addonError('cudaErrorMemoryAllocation', 2, 'cudaMallocAsync(8 bytes): out of memory (cudaErrorMemoryAllocation)'),
      'matmul',
    );
    expect(e).toBeInstanceOf(DeviceError);
    expect((e as DeviceError).code).toBe('DEVICE_OUT_OF_MEMORY');
    expect((e as DeviceError).message).toContain('out of memory');
    expect((e as DeviceError).message).toContain('keeps working');
  });

  it('an illegal address or launch failure is DEVICE_LOST with the CUDA error string', () => {
    for (const [name, code] of [
      ['cudaErrorIllegalAddress', 700],
      ['cudaErrorLaunchFailure', 719],
    ] as const) {
      const e = toDeviceError(
        addonError(name, code, `read: an illegal memory access was encountered (${name})`),
        'read',
      ) as DeviceError;
      expect(e.code).toBe('DEVICE_LOST');
      expect(e.message).toContain(name);
      expect(e.message).toContain('restart the process');
    }
  });

  it('other CUDA errors are DEVICE_ERROR; non-CUDA errors pass through unchanged', () => {
    expect(
      (toDeviceError(addonError('cudaErrorInvalidValue', 1, 'matmul: invalid argument'), 'matmul') as DeviceError).code,
    ).toBe('DEVICE_ERROR');
    const plain = new TypeError('x');
    expect(toDeviceError(plain, 'add')).toBe(plain);
  });
});

describe('why the backend is unavailable', () => {
  const base = { ok: false as const, stage: 'cudaGetDeviceCount', runtimeVersion: 13000 };

  it('no driver (error 35 with driver version 0)', () => {
    const reason = unavailableReason({
      ...base,
      driverVersion: 0,
      cudaError: 35,
      cudaErrorName: 'cudaErrorInsufficientDriver',
      message: 'CUDA driver version is insufficient for CUDA runtime version',
    });
    expect(reason).toMatch(/^no NVIDIA CUDA driver is installed/);
    expect(reason).toContain('error 35');
    expect(reason).toContain('CUDA 13.0 or newer');
  });

  it('a driver too old for the runtime', () => {
    const reason = unavailableReason({
      ...base,
      driverVersion: 12040,
      cudaError: 35,
      cudaErrorName: 'cudaErrorInsufficientDriver',
      message: 'CUDA driver version is insufficient for CUDA runtime version',
    });
    expect(reason).toContain('supports CUDA 12.4 only');
  });

  it('no device, an old GPU, any other CUDA error', () => {
    expect(
      unavailableReason({
        ...base,
        driverVersion: 13000,
        cudaError: 100,
        cudaErrorName: 'cudaErrorNoDevice',
        message: 'no CUDA-capable device is detected',
      }),
    ).toMatch(/^no CUDA device found/);
    expect(
      unavailableReason({
        ...base,
        stage: 'compute capability',
        driverVersion: 13000,
        name: 'Tesla T4',
        message: 'compute capability 7.5 is below 8.0',
      }),
    ).toBe('Tesla T4: compute capability 7.5 is below 8.0');
    expect(
      unavailableReason({
        ...base,
        stage: 'cudaSetDevice',
        driverVersion: 13000,
        cudaError: 46,
        cudaErrorName: 'cudaErrorDevicesUnavailable',
        message: 'CUDA-capable device(s) is/are busy or unavailable',
      }),
    ).toContain('cudaSetDevice failed');
  });
});
