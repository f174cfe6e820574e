/**
 * The CPU backend: plain TypeScript over typed arrays, float32 with double-precision accumulation. It
 * runs wherever JavaScript does (Node, browsers, workers) and needs no setup, so it is the fallback
 * every other backend is compared against.
 */
import type { Backend, DType, HostArray, Kernels, StorageHandle } from '@diff-transformer/core';
import * as kernels from './kernels/index.js';
import type { CpuStorage } from './storage.js';
import { CPU_DTYPES, allocate, assertStorable } from './storage.js';

export interface CpuBackend extends Backend {
  readonly name: 'cpu';
  /** Storages this backend handed out (uploads, zeros, kernel outputs) and has not been asked to free. */
  readonly liveStorages: number;
}

export function createCpuBackend(): CpuBackend {
  // Storages not yet freed. A set (rather than a bare counter) makes a repeated free of one handle harmless.
  const live = new Set<StorageHandle>();
  const track = <S extends CpuStorage>(storage: S): S => {
    live.add(storage);
    return storage;
  };
  // Every kernel but cacheWrite returns a new storage; count it like an upload.
  const counted =
    <A extends unknown[]>(kernel: (...args: A) => CpuStorage) =>
    (...args: A): CpuStorage =>
      track(kernel(...args));

  const table: Kernels = {
    matmul: counted(kernels.matmul),
    embedding: counted(kernels.embedding),
    rmsNorm: counted(kernels.rmsNorm),
    rotary: counted(kernels.rotary),
    swiglu: counted(kernels.swiglu),
    add: counted(kernels.add),
    sigmoid: counted(kernels.sigmoid),
    diffAttention: counted(kernels.diffAttention),
    attention: counted(kernels.attention),
    softmax: counted(kernels.softmax),
    argmax: counted(kernels.argmax),
    narrow: counted(kernels.narrow),
    cacheWrite: kernels.cacheWrite,
  };

  return {
    name: 'cpu',
    device: 'CPU (TypeScript, float32)',
    kernels: table,
    dtypes: CPU_DTYPES,

    upload(data: HostArray, dtype: DType): CpuStorage {
      assertStorable(dtype);
      // Always a copy: the caller keeps ownership of its array and may change it afterwards.
      return track(dtype === 'int32' ? new Int32Array(data) : new Float32Array(data));
    },

    zeros(size: number, dtype: DType): CpuStorage {
      return track(allocate(dtype, size));
    },

    async read(storage: StorageHandle, _dtype: DType, size: number): Promise<HostArray> {
      // A copy, so that the caller cannot write into a live tensor through what it was given.
      return (storage as CpuStorage).slice(0, size);
    },

    free(storage: StorageHandle): void {
      // Kernels run synchronously, so no queued work can still need the array: dropping our reference is
      // all there is to do, and the garbage collector reclaims the memory once core drops its own.
      live.delete(storage);
    },

    async synchronize(): Promise<void> {
      // Every kernel has already finished when it returns.
    },

    get liveStorages(): number {
      return live.size;
    },
  };
}
