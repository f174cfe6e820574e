/**
 * The device side of the backend, as the kernels see it. Kernels only describe work ("this program,
 * these buffers, these parameters, this many workgroups"); the runtime puts together the parts that
 * do it, one file each:
 *   storage.ts    tensor storages from the buffer pool (pool.ts), freed once no GPU work uses them
 *   pipelines.ts  the pipeline cache, and printing a pipeline's WGSL
 *   batch.ts      command batching: one pending encoder, submitted on readback, synchronize or when full
 *   errors.ts     WebGPU's asynchronous errors and device loss as core's DeviceError
 * and adds readback through a staging buffer, synchronize() and dispose().
 */
import type { DType, GuardViolation } from '@diff-transformer/core';
import { DeviceError } from '@diff-transformer/core';
import { CommandBatch } from './batch.js';
import { DeviceErrors } from './errors.js';
import { BACKEND_NAME } from './gpu.js';
import { PipelineCache, type PipelineDebug, type Program } from './pipelines.js';
import { BufferPool, Usage, type PoolStats } from './pool.js';
import { CANARY, GpuStorage, Storages } from './storage.js';

const MAP_READ_MODE = 0x1; // GPUMapMode.READ (the global may not exist in Node)

export interface RuntimeOptions {
  /** Dispatches per submit at most (the uniform arena's slots). Default 256. */
  readonly maxBatch?: number;
  /** Idle pooled bytes kept for reuse. Default 512 MiB. */
  readonly maxPooledBytes?: number;
  /** Refuse allocations that would take the backend's buffers above this many bytes (OOM). */
  readonly memoryLimitBytes?: number;
  /** What to print while compiling pipelines; default from DIFFTX_DEBUG_PIPELINES and DIFFTX_DEBUG_WGSL. */
  readonly debug?: PipelineDebug;
}

export interface RuntimeStats {
  /** queue.submit() calls. */
  submits: number;
  /** Compute dispatches recorded. */
  dispatches: number;
  /** Pipelines compiled. */
  pipelinesCreated: number;
  /** Milliseconds spent creating pipelines (on SwiftShader, most of a small workload's time). */
  pipelineMs: number;
  /** Pipeline lookups served by the cache. */
  pipelineCacheHits: number;
  /** Buffers whose release waited for pending or in-flight work. */
  deferredFrees: number;
  /** Storages handed out and not yet freed. */
  liveStorages: number;
}

export class Runtime {
  readonly limits: GPUSupportedLimits;
  readonly #device: GPUDevice;
  readonly #errors: DeviceErrors;
  readonly #pipelines: PipelineCache;
  readonly #batch: CommandBatch;
  readonly #storages: Storages;
  readonly #staging: BufferPool;
  /** A 16-byte buffer bound where a kernel's optional input is absent. */
  readonly #absent: GPUBuffer;
  #disposed = false;

  constructor(device: GPUDevice, options: RuntimeOptions = {}) {
    this.#device = device;
    this.limits = device.limits;
    this.#errors = new DeviceErrors(device);
    this.#pipelines = new PipelineCache(device, this.#errors, options.debug);
    this.#batch = new CommandBatch(device, this.#errors, options.maxBatch);
    this.#storages = new Storages(device, this.#errors, this.#batch, options);
    this.#staging = new BufferPool(device, Usage.MAP_READ | Usage.COPY_DST, 'staging', 64 * 1024 * 1024);
    this.#absent = device.createBuffer({ size: 16, usage: Usage.STORAGE, label: 'absent input' });
  }

  get stats(): RuntimeStats {
    return { ...this.#batch.stats, ...this.#pipelines.stats, ...this.#storages.stats };
  }

  // Storage ------------------------------------------------------------------------------------

  /** A storage of `bytes` (contents undefined: kernels overwrite every element they own). */
  allocate(bytes: number, dtype: DType): GpuStorage {
    this.check();
    return this.#storages.allocate(bytes, dtype);
  }

  /** A storage holding `data` (written through the queue, ahead of the pending batch). */
  upload(data: ArrayBufferView, dtype: DType): GpuStorage {
    const storage = this.allocate(data.byteLength, dtype);
    if (data.byteLength > 0)
      this.#device.queue.writeBuffer(storage.buffer, storage.offset, data.buffer, data.byteOffset, data.byteLength);
    return storage;
  }

  /** A zero-filled storage (cleared by the pending batch, so ordered with the kernels around it). */
  zeros(bytes: number, dtype: DType): GpuStorage {
    const storage = this.allocate(bytes, dtype);
    this.clear(storage);
    return storage;
  }

  /** Records zero-filling a storage. */
  clear(storage: GpuStorage): void {
    this.check();
    if (storage.byteLength === 0) return;
    this.#batch.encoder().clearBuffer(storage.buffer, storage.offset, roundUp4(storage.byteLength));
    storage.lastUse = this.#batch.id;
  }

  /** Frees a storage; its buffer is reused once the work that last used it has completed. */
  free(storage: GpuStorage): void {
    this.#storages.free(storage);
  }

  // Guard mode ---------------------------------------------------------------------------------

  get guarding(): boolean {
    return this.#storages.guarding;
  }

  /** Turns guard mode on or off; off releases the storages held back for a check. */
  enableGuards(on: boolean): void {
    this.#storages.enableGuards(on);
  }

  /**
   * Reads the canaries of every guarded storage, alive or held, through one staging buffer (after the
   * work queued before it); releases the held storages and re-arms the live ones.
   */
  async checkGuards(): Promise<GuardViolation[]> {
    this.check();
    const { regions, done } = this.#storages.guardRegions();
    const total = regions.reduce((sum, r) => sum + r.bytes, 0);
    const violations: GuardViolation[] = [];
    if (total > 0) {
      const staging = this.#staging.acquire(total);
      const encoder = this.#batch.encoder();
      let at = 0;
      for (const region of regions) {
        encoder.copyBufferToBuffer(region.storage.buffer, region.from, staging, at, region.bytes);
        region.storage.lastUse = this.#batch.id;
        at += region.bytes;
      }
      this.flush();
      await staging.mapAsync(MAP_READ_MODE, 0, total);
      const words = new Uint32Array(staging.getMappedRange(0, total).slice(0));
      staging.unmap();
      this.#staging.release(staging);
      at = 0;
      for (const region of regions) {
        let spoiled = 0;
        for (let i = at / 4; i < (at + region.bytes) / 4; i++) if (words[i] !== CANARY) spoiled++;
        at += region.bytes;
        const { byteLength, dtype } = region.storage;
        if (spoiled > 0) violations.push({ size: byteLength / 4, dtype, side: region.side, words: spoiled });
      }
      await this.#errors.collect();
    }
    done();
    return violations;
  }

  /** The buffer to bind where an optional input is absent. */
  get absent(): GPUBuffer {
    return this.#absent;
  }

  // Work ---------------------------------------------------------------------------------------

  /**
   * Records one dispatch of `program` over `groups` workgroups, with `params` (32-bit words) as its
   * uniform block and `bindings` as its storage buffers, in the order of the program's layout.
   */
  dispatch(
    program: Program,
    bindings: ReadonlyArray<GpuStorage | GPUBuffer>,
    params: ArrayLike<number>,
    groups: readonly [number, number, number],
  ): void {
    this.check();
    if (groups[0] === 0 || groups[1] === 0 || groups[2] === 0) return;
    const pipeline = this.#pipelines.get(program);
    const buffers = bindings.map((b): GPUBufferBinding => {
      if (!(b instanceof GpuStorage)) return { buffer: b };
      b.lastUse = this.#batch.id;
      // A guarded storage is bound from its first element to the end of its buffer, canaries included.
      return b.guarded ? { buffer: b.buffer, offset: b.offset } : { buffer: b.buffer };
    });
    const layout = this.#pipelines.bindGroupLayout(program.layout);
    this.#batch.dispatch(program.key, pipeline, layout, buffers, params, groups);
  }

  /** Submits the pending batch, if any. */
  flush(): void {
    if (!this.#disposed) this.#batch.flush();
  }

  /** Submits pending work and waits until the GPU has finished everything submitted. */
  async synchronize(): Promise<void> {
    this.check();
    this.flush();
    await this.#batch.done;
    await this.#errors.collect();
  }

  /** Copies a storage's first `bytes` back to the host through a staging buffer. */
  async read(storage: GpuStorage, bytes: number): Promise<ArrayBuffer> {
    this.check();
    if (bytes === 0) return new ArrayBuffer(0);
    const staging = this.#staging.acquire(bytes);
    this.#batch.encoder().copyBufferToBuffer(storage.buffer, storage.offset, staging, 0, roundUp4(bytes));
    storage.lastUse = this.#batch.id;
    this.flush();
    try {
      await staging.mapAsync(MAP_READ_MODE, 0, roundUp4(bytes));
    } catch (cause) {
      await this.#errors.collect();
      throw new DeviceError(
        BACKEND_NAME,
        'internal',
        `reading a tensor back failed: ${cause instanceof Error ? cause.message : String(cause)}`,
        cause,
      );
    }
    const copy = staging.getMappedRange(0, roundUp4(bytes)).slice(0, bytes);
    staging.unmap();
    this.#staging.release(staging);
    await this.#errors.collect();
    return copy;
  }

  /** Throws the DeviceError that says why the device cannot take work (disposed, lost, an earlier error). */
  check(): void {
    this.#errors.check();
  }

  /** The key and WGSL source of every pipeline compiled so far. */
  pipelineSources(): Array<{ key: string; wgsl: string }> {
    return this.#pipelines.sources();
  }

  /** Waits for submitted work, destroys every buffer and the device. Safe to call twice. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    try {
      if (!this.#errors.lost) {
        this.flush();
        await this.#batch.done;
      }
    } finally {
      this.#disposed = true;
      this.#errors.close();
      this.#batch.close();
      this.#storages.close();
      this.#staging.destroyAll();
      this.#absent.destroy();
      this.#pipelines.clear();
      this.#device.destroy();
    }
  }

  /** Destroys the device as a driver reset would (for tests of device loss). */
  simulateDeviceLoss(): void {
    this.#device.destroy();
  }

  /** Pool counters of the three pools. */
  poolStats(): { storage: PoolStats; staging: PoolStats; uniform: PoolStats } {
    return {
      storage: { ...this.#storages.pool.stats },
      staging: { ...this.#staging.stats },
      uniform: this.#batch.uniformPoolStats,
    };
  }
}

function roundUp4(n: number): number {
  return Math.ceil(n / 4) * 4;
}
