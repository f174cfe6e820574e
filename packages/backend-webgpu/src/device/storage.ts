/**
 * Tensor storages: buffers from the storage pool, checked against the adapter's largest buffer and the
 * optional memory budget, and given back to the pool only once the GPU work that last used them has
 * completed (see `free`).
 */
import type { DType } from '@diff-transformer/core';
import { DeviceError } from '@diff-transformer/core';
import type { CommandBatch } from './batch.js';
import type { DeviceErrors } from './errors.js';
import { BACKEND_NAME } from './gpu.js';
import { BufferPool, sizeClass, Usage } from './pool.js';

/** A tensor's storage on this backend: a pooled buffer and the batch that last used it. */
export class GpuStorage {
  /** The batch that last recorded work on this buffer (0: none). */
  lastUse = 0;
  freed = false;
  constructor(
    readonly buffer: GPUBuffer,
    /** Bytes of the tensor (the buffer may be larger: its size class). */
    readonly byteLength: number,
    readonly dtype: DType,
  ) {}
}

export interface StorageStats {
  /** Buffers whose release waited for pending or in-flight work. */
  deferredFrees: number;
  /** Storages handed out and not yet freed. */
  liveStorages: number;
}

export class Storages {
  readonly pool: BufferPool;
  readonly stats: StorageStats = { deferredFrees: 0, liveStorages: 0 };
  readonly #device: GPUDevice;
  readonly #errors: DeviceErrors;
  readonly #batch: CommandBatch;
  readonly #memoryLimit: number;
  readonly #live = new Set<GpuStorage>();
  #closed = false;

  constructor(
    device: GPUDevice,
    errors: DeviceErrors,
    batch: CommandBatch,
    options: { maxPooledBytes?: number; memoryLimitBytes?: number },
  ) {
    this.#device = device;
    this.#errors = errors;
    this.#batch = batch;
    this.#memoryLimit = options.memoryLimitBytes ?? Infinity;
    const pooled = options.maxPooledBytes ?? 512 * 1024 * 1024;
    this.pool = new BufferPool(device, Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST, 'storage', pooled);
  }

  /** A storage of `bytes` (contents undefined: kernels overwrite every element they own). */
  allocate(bytes: number, dtype: DType): GpuStorage {
    const size = sizeClass(bytes);
    const limits = this.#device.limits;
    const max = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
    if (size > max) {
      throw new DeviceError(
        BACKEND_NAME,
        'out-of-memory',
        `a tensor of ${bytes} bytes is larger than the adapter's largest storage buffer (${max} bytes); ` +
          `split the work into smaller tensors`,
      );
    }
    if (this.pool.stats.bytes + size > this.#memoryLimit) {
      this.pool.trim();
      if (this.pool.stats.bytes + size > this.#memoryLimit) {
        throw new DeviceError(
          BACKEND_NAME,
          'out-of-memory',
          `allocating ${size} bytes would exceed the memory limit of ${this.#memoryLimit} bytes ` +
            `(${this.pool.stats.bytes} bytes in use); free tensors you no longer need`,
        );
      }
    }
    const buffer = this.pool.acquire(bytes, (classSize) =>
      this.#errors.scoped('out-of-memory', 'allocating a buffer', () =>
        this.#device.createBuffer({ size: classSize, usage: this.pool.usage, label: 'storage' }),
      ),
    );
    const storage = new GpuStorage(buffer, bytes, dtype);
    this.#live.add(storage);
    this.stats.liveStorages = this.#live.size;
    return storage;
  }

  /**
   * Frees a storage. Its buffer returns to the pool only after the batch that last used it has
   * completed: the pending batch may still read it, and a pooled buffer may next be written by
   * queue.writeBuffer, which the queue runs before the pending batch's commands.
   */
  free(storage: GpuStorage): void {
    if (storage.freed) return;
    storage.freed = true;
    this.#live.delete(storage);
    this.stats.liveStorages = this.#live.size;
    if (this.#closed) return;
    const release = () => this.pool.release(storage.buffer);
    if (storage.lastUse > this.#batch.completed) {
      this.stats.deferredFrees++;
      this.#batch.after(storage.lastUse, release);
    } else {
      release();
    }
  }

  /** Marks every storage freed and destroys every buffer (the device is going away). */
  close(): void {
    this.#closed = true;
    for (const storage of this.#live) storage.freed = true;
    this.#live.clear();
    this.stats.liveStorages = 0;
    this.pool.destroyAll();
  }
}
