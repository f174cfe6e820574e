/**
 * Command batching. Kernels record compute dispatches into one pending command encoder (one compute
 * pass, ended only for copies and clears) and return at once; each dispatch's parameters go into a
 * slot of the batch's uniform arena, written with one writeBuffer at submit. flush() submits the batch:
 * on readback, on synchronize(), or when the arena is full (`maxBatch` dispatches), so a whole forward
 * pass is one submit. Batches complete in submission order; work that must wait until a batch is done
 * on the GPU (releasing the buffers it used) is queued with after().
 */
import { DeviceError } from '@diff-transformer/core';
import type { DeviceErrors } from './errors.js';
import { BACKEND_NAME } from './gpu.js';
import { BufferPool, Usage, type PoolStats } from './pool.js';

/** 256 bytes of parameters per dispatch at most. */
export const UNIFORM_SLOT_WORDS = 64;

export interface BatchStats {
  /** queue.submit() calls. */
  submits: number;
  /** Compute dispatches recorded. */
  dispatches: number;
}

export class CommandBatch {
  readonly stats: BatchStats = { submits: 0, dispatches: 0 };
  readonly #device: GPUDevice;
  readonly #errors: DeviceErrors;
  readonly #maxBatch: number;
  readonly #slotBytes: number;
  readonly #uniformPool: BufferPool;
  readonly #arenaWords: Uint32Array;

  // The pending batch: its id, encoder, open compute pass and uniform arena.
  #id = 1;
  #completed = 0;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #arena: GPUBuffer | null = null;
  #arenaSlots = 0;
  /** Work to run once a batch has completed on the GPU, by batch id. */
  readonly #afterBatch = new Map<number, Array<() => void>>();
  /** The completion of the last submitted batch. */
  #lastDone: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(device: GPUDevice, errors: DeviceErrors, maxBatch = 256) {
    this.#device = device;
    this.#errors = errors;
    this.#maxBatch = Math.max(1, maxBatch);
    this.#slotBytes = Math.max(256, device.limits.minUniformBufferOffsetAlignment);
    this.#arenaWords = new Uint32Array((this.#maxBatch * this.#slotBytes) / 4);
    this.#uniformPool = new BufferPool(
      device,
      Usage.UNIFORM | Usage.COPY_DST,
      'uniforms',
      16 * this.#maxBatch * this.#slotBytes,
    );
  }

  /** The id of the pending batch: work recorded now belongs to it. */
  get id(): number {
    return this.#id;
  }

  /** Every batch up to this id has completed on the GPU. */
  get completed(): number {
    return this.#completed;
  }

  /** The completion of the last submitted batch. */
  get done(): Promise<void> {
    return this.#lastDone;
  }

  get uniformPoolStats(): PoolStats {
    return { ...this.#uniformPool.stats };
  }

  /** The pending encoder with no compute pass open, for copies and clears. */
  encoder(): GPUCommandEncoder {
    this.#endPass();
    this.#encoder ??= this.#device.createCommandEncoder({ label: `batch ${this.#id}` });
    return this.#encoder;
  }

  /**
   * Records one dispatch: `params` (32-bit words) as the uniform block at binding 0, `storage` as the
   * bindings from 1 on. A full batch is submitted at once, so no batch outgrows its uniform arena.
   */
  dispatch(
    key: string,
    pipeline: GPUComputePipeline,
    layout: GPUBindGroupLayout,
    storage: readonly GPUBufferBinding[],
    params: ArrayLike<number>,
    groups: readonly [number, number, number],
  ): void {
    if (params.length > UNIFORM_SLOT_WORDS) {
      throw new DeviceError(
        BACKEND_NAME,
        'internal',
        `program ${key}: ${params.length} parameter words, at most ${UNIFORM_SLOT_WORDS}`,
      );
    }
    this.#arena ??= this.#uniformPool.acquire(this.#maxBatch * this.#slotBytes);
    const slot = this.#arenaSlots++;
    this.#arenaWords.set(params, (slot * this.#slotBytes) / 4);
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: this.#arena, offset: slot * this.#slotBytes, size: UNIFORM_SLOT_WORDS * 4 } },
      ...storage.map((resource, i) => ({ binding: i + 1, resource })),
    ];
    const bindGroup = this.#device.createBindGroup({ layout, entries });
    if (!this.#pass) {
      this.#encoder ??= this.#device.createCommandEncoder({ label: `batch ${this.#id}` });
      this.#pass = this.#encoder.beginComputePass();
    }
    this.#pass.setPipeline(pipeline);
    this.#pass.setBindGroup(0, bindGroup);
    this.#pass.dispatchWorkgroups(groups[0], groups[1], groups[2]);
    this.stats.dispatches++;
    if (this.#arenaSlots >= this.#maxBatch) this.flush();
  }

  /** Submits the pending batch, if any. */
  flush(): void {
    if (!this.#encoder || this.#closed) return;
    this.#endPass();
    const encoder = this.#encoder;
    const arena = this.#arena;
    this.#encoder = null;
    this.#arena = null;
    if (arena && this.#arenaSlots > 0) {
      this.#device.queue.writeBuffer(arena, 0, this.#arenaWords.buffer, 0, this.#arenaSlots * this.#slotBytes);
    }
    this.#arenaSlots = 0;
    const id = this.#id++;
    this.#errors.scoped('out-of-memory', 'submitting work', () =>
      this.#errors.scoped('validation', 'submitting work', () => this.#device.queue.submit([encoder.finish()])),
    );
    this.stats.submits++;
    if (arena) this.after(id, () => this.#uniformPool.release(arena));
    this.#lastDone = this.#device.queue.onSubmittedWorkDone().then(
      () => this.#complete(id),
      () => this.#complete(id),
    );
  }

  /** Runs `fn` once batch `id` has completed (at once if it has). */
  after(id: number, fn: () => void): void {
    if (id <= this.#completed) {
      fn();
      return;
    }
    let list = this.#afterBatch.get(id);
    if (!list) {
      list = [];
      this.#afterBatch.set(id, list);
    }
    list.push(fn);
  }

  /** Drops the pending work and every queued callback, destroys the arenas (the device is going away). */
  close(): void {
    this.#closed = true;
    this.#encoder = null;
    this.#pass = null;
    this.#afterBatch.clear();
    this.#uniformPool.destroyAll();
  }

  #endPass(): void {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
  }

  /** Batches complete in submission order: everything up to `id` is done. */
  #complete(id: number): void {
    if (this.#closed || id <= this.#completed) return;
    this.#completed = id;
    for (const [batch, list] of this.#afterBatch) {
      if (batch > id) continue;
      this.#afterBatch.delete(batch);
      for (const fn of list) fn();
    }
  }
}
