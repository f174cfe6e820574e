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
    /** Where the tensor starts in the buffer: 0, or past the canaries of a guarded storage. */
    readonly offset = 0,
  ) {}

  /** Whether it was made in guard mode: canaries before `offset` and after the tensor's bytes. */
  get guarded(): boolean {
    return this.offset > 0;
  }
}

/** The canary word of guard mode: a signalling-NaN bit pattern that no kernel computes. */
export const CANARY = 0x7fa5a5a5;

/** A span of a guarded storage's buffer that holds canaries. */
export interface GuardRegion {
  readonly storage: GpuStorage;
  readonly side: 'before' | 'after';
  /** Byte offset in the buffer, and length. */
  readonly from: number;
  readonly bytes: number;
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
  // Guard mode (core's BackendGuards): whether it is on, the guarded storages alive, the freed ones held.
  #guarding = false;
  readonly #guarded = new Set<GpuStorage>();
  readonly #held: GpuStorage[] = [];

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

  /**
   * A storage of `bytes` (contents undefined: kernels overwrite every element they own). In guard mode
   * the tensor starts one binding-offset alignment (≥ 256 bytes) into its buffer, and the bytes before it
   * and after it to the end of the buffer hold canaries; it is bound from there to the buffer's end, so a
   * shader that writes past its last element writes into them.
   */
  allocate(bytes: number, dtype: DType): GpuStorage {
    const guard = this.#guarding ? this.#guardBytes : 0;
    const needed = bytes + 2 * guard;
    const size = sizeClass(needed);
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
    const buffer = this.pool.acquire(needed, (classSize) =>
      this.#errors.scoped('out-of-memory', 'allocating a buffer', () =>
        this.#device.createBuffer({ size: classSize, usage: this.pool.usage, label: 'storage' }),
      ),
    );
    const storage = new GpuStorage(buffer, bytes, dtype, guard);
    this.#live.add(storage);
    this.stats.liveStorages = this.#live.size;
    if (storage.guarded) {
      this.#guarded.add(storage);
      this.#writeCanaries(storage);
    }
    return storage;
  }

  /** The bytes before a guarded tensor: a multiple of the storage binding offset alignment. */
  get #guardBytes(): number {
    const alignment = this.#device.limits.minStorageBufferOffsetAlignment;
    return Math.ceil(256 / alignment) * alignment;
  }

  /** Writes the canaries of a guarded storage (through the queue, ahead of the pending batch). */
  #writeCanaries(storage: GpuStorage): void {
    const after = storage.offset + roundUp4(storage.byteLength);
    const words = new Uint32Array(Math.max(storage.offset, storage.buffer.size - after) / 4).fill(CANARY);
    this.#device.queue.writeBuffer(storage.buffer, 0, words.buffer, 0, storage.offset);
    this.#device.queue.writeBuffer(storage.buffer, after, words.buffer, 0, storage.buffer.size - after);
  }

  get guarding(): boolean {
    return this.#guarding;
  }

  /** Turns guard mode on or off; off releases the storages held back for a check. */
  enableGuards(on: boolean): void {
    this.#guarding = on;
    if (!on) for (const storage of this.#held.splice(0)) this.#release(storage);
  }

  /**
   * The canary spans of every guarded storage, alive or held, for a check to read; `done()`, once they
   * are read, re-arms the live ones and releases the held ones.
   */
  guardRegions(): { regions: GuardRegion[]; done: () => void } {
    const held = this.#held.splice(0);
    const regions = [...this.#guarded, ...held].flatMap((storage): GuardRegion[] => {
      const after = storage.offset + roundUp4(storage.byteLength);
      return [
        { storage, side: 'before', from: 0, bytes: storage.offset },
        { storage, side: 'after', from: after, bytes: storage.buffer.size - after },
      ];
    });
    const done = () => {
      for (const storage of this.#guarded) this.#writeCanaries(storage);
      for (const storage of held) this.#release(storage);
    };
    return { regions, done };
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
    if (this.#guarded.delete(storage) && this.#guarding) {
      // Held back, not reused, until the next guard check has looked at its canaries.
      this.#held.push(storage);
      return;
    }
    this.#release(storage);
  }

  /** Gives a freed storage's buffer back to the pool once the work that used it has completed. */
  #release(storage: GpuStorage): void {
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

function roundUp4(n: number): number {
  return Math.ceil(n / 4) * 4;
}
