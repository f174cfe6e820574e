/**
 * The device side of the backend: buffers (pooled), pipelines (cached), command batching, readback and
 * error handling. Kernels only describe work ("this program, these buffers, these parameters, this
 * many workgroups"); the runtime records it into one pending command encoder and submits when
 *   - data is read back (read), synchronize() is called, or
 *   - the batch is full (its uniform arena holds `maxBatch` dispatches),
 * so a whole forward pass is one submit. A buffer freed while pending or in-flight work uses it goes
 * back to the pool only once that work has completed (see `free`).
 *
 * Device loss, out-of-memory and validation errors become core's DeviceError: checked synchronously
 * where WebGPU allows (sizes against limits and the memory budget, a device already lost), and
 * otherwise through error scopes, reported by the next read() or synchronize() and the next kernel.
 */
import type { DType, GuardViolation } from '@diff-transformer/core';
import { DeviceError } from '@diff-transformer/core';
import { BACKEND_NAME } from './gpu.js';
import { BufferPool, sizeClass, type PoolStats } from './pool.js';

/** GPUBufferUsage and GPUMapMode values (the globals may not exist in Node). */
export const Usage = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
const MAP_READ_MODE = 0x1;

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
const CANARY = 0x7fa5a5a5;

/** A compute program: its cache key, the storage layout of its bindings, and its WGSL source. */
export interface Program {
  /** Unique per shader and shape class; the pipeline cache key. */
  readonly key: string;
  /**
   * Binding 0 is always the uniform parameters; then one letter per storage binding, in order:
   * 'r' read-only storage, 'w' read-write storage.
   */
  readonly layout: string;
  readonly code: () => string;
  /** Workgroup memory the program declares, in bytes (checked against the device limit). */
  readonly workgroupBytes?: number;
}

export interface RuntimeOptions {
  /** Dispatches per submit at most (the uniform arena's slots). Default 256. */
  readonly maxBatch?: number;
  /** Idle pooled bytes kept for reuse. Default 512 MiB. */
  readonly maxPooledBytes?: number;
  /** Refuse allocations that would take the backend's buffers above this many bytes (OOM). */
  readonly memoryLimitBytes?: number;
}

export interface RuntimeStats {
  /** queue.submit() calls. */
  submits: number;
  /** Compute dispatches recorded. */
  dispatches: number;
  /** Pipelines compiled, and lookups served by the cache. */
  pipelinesCreated: number;
  /** Milliseconds spent creating pipelines (on SwiftShader, most of a small workload's time). */
  pipelineMs: number;
  pipelineCacheHits: number;
  /** Buffers whose release waited for pending or in-flight work. */
  deferredFrees: number;
  /** Storages handed out and not yet freed. */
  liveStorages: number;
}

const UNIFORM_SLOT_WORDS = 64; // 256 bytes of parameters per dispatch at most

/** DIFFTX_DEBUG_PIPELINES=1 (Node) prints each pipeline compiled and how long it took. */
const DEBUG_PIPELINES = Boolean(
  (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.DIFFTX_DEBUG_PIPELINES,
);

export class Runtime {
  readonly storagePool: BufferPool;
  readonly stagingPool: BufferPool;
  readonly uniformPool: BufferPool;
  readonly stats: RuntimeStats = {
    submits: 0,
    dispatches: 0,
    pipelinesCreated: 0,
    pipelineMs: 0,
    pipelineCacheHits: 0,
    deferredFrees: 0,
    liveStorages: 0,
  };
  readonly limits: GPUSupportedLimits;

  readonly #device: GPUDevice;
  readonly #maxBatch: number;
  readonly #memoryLimit: number;
  readonly #slotBytes: number;
  readonly #pipelines = new Map<string, GPUComputePipeline>();
  readonly #layouts = new Map<string, GPUPipelineLayout & { bindGroupLayout: GPUBindGroupLayout }>();
  readonly #live = new Set<GpuStorage>();
  // Guard mode (core's BackendGuards): whether it is on, the guarded storages alive, the freed ones held.
  #guarding = false;
  readonly #guarded = new Set<GpuStorage>();
  readonly #held: GpuStorage[] = [];

  // The pending batch: its id, encoder, open compute pass and uniform arena.
  #batch = 1;
  #completed = 0;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #arena: GPUBuffer | null = null;
  readonly #arenaWords: Uint32Array;
  #arenaSlots = 0;
  /** Work to run once a batch has completed on the GPU (buffer releases), by batch id. */
  readonly #afterBatch = new Map<number, Array<() => void>>();
  /** The promise of the last submitted batch's completion. */
  #lastDone: Promise<void> = Promise.resolve();

  // Errors: a DeviceError waiting to be thrown, pending error-scope results, device loss.
  #error: DeviceError | null = null;
  #scopes: Array<Promise<void>> = [];
  #lost: { reason: string; message: string } | null = null;
  #disposed = false;
  /** A 16-byte buffer bound where a kernel's optional input is absent. */
  readonly #dummy: GPUBuffer;

  constructor(device: GPUDevice, options: RuntimeOptions = {}) {
    this.#device = device;
    this.limits = device.limits;
    this.#maxBatch = Math.max(1, options.maxBatch ?? 256);
    this.#memoryLimit = options.memoryLimitBytes ?? Infinity;
    this.#slotBytes = Math.max(256, device.limits.minUniformBufferOffsetAlignment);
    this.#arenaWords = new Uint32Array((this.#maxBatch * this.#slotBytes) / 4);
    const pooled = options.maxPooledBytes ?? 512 * 1024 * 1024;
    this.storagePool = new BufferPool(device, Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST, 'storage', pooled);
    this.stagingPool = new BufferPool(device, Usage.MAP_READ | Usage.COPY_DST, 'staging', 64 * 1024 * 1024);
    this.uniformPool = new BufferPool(
      device,
      Usage.UNIFORM | Usage.COPY_DST,
      'uniforms',
      16 * this.#maxBatch * this.#slotBytes,
    );
    this.#dummy = device.createBuffer({ size: 16, usage: Usage.STORAGE, label: 'absent input' });
    device.lost.then((info) => {
      if (!this.#disposed) this.#lost = { reason: info.reason, message: info.message };
    });
    device.onuncapturederror = (event: GPUUncapturedErrorEvent) => {
      this.#record(event.error);
    };
  }

  // -------------------------------------------------------------------------------------------
  // Storage
  // -------------------------------------------------------------------------------------------

  /**
   * A storage of `bytes` (contents undefined: kernels overwrite every element they own). In guard mode
   * the tensor starts one binding-offset alignment (≥ 256 bytes) into its buffer, and the bytes before it
   * and after it to the end of the buffer hold canaries; it is bound from there to the buffer's end, so a
   * shader that writes past its last element writes into them.
   */
  allocate(bytes: number, dtype: DType): GpuStorage {
    this.check();
    const guard = this.#guarding ? this.#guardBytes : 0;
    const needed = bytes + 2 * guard;
    const size = sizeClass(needed);
    const max = Math.min(this.limits.maxBufferSize, this.limits.maxStorageBufferBindingSize);
    if (size > max) {
      throw new DeviceError(
        BACKEND_NAME,
        'out-of-memory',
        `a tensor of ${bytes} bytes is larger than the adapter's largest storage buffer (${max} bytes); ` +
          `split the work into smaller tensors`,
      );
    }
    if (this.storagePool.stats.bytes + size > this.#memoryLimit) {
      this.storagePool.trim();
      if (this.storagePool.stats.bytes + size > this.#memoryLimit) {
        throw new DeviceError(
          BACKEND_NAME,
          'out-of-memory',
          `allocating ${size} bytes would exceed the memory limit of ${this.#memoryLimit} bytes ` +
            `(${this.storagePool.stats.bytes} bytes in use); free tensors you no longer need`,
        );
      }
    }
    const buffer = this.storagePool.acquire(needed, (classSize) => {
      this.#device.pushErrorScope('out-of-memory');
      const created = this.#device.createBuffer({ size: classSize, usage: this.storagePool.usage, label: 'storage' });
      this.#watch(this.#device.popErrorScope());
      return created;
    });
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
    const alignment = this.limits.minStorageBufferOffsetAlignment;
    return Math.ceil(256 / alignment) * alignment;
  }

  /** Writes the canaries of a guarded storage (through the queue, ahead of the pending batch). */
  #writeCanaries(storage: GpuStorage): void {
    const after = storage.offset + roundUp4(storage.byteLength);
    const words = new Uint32Array(Math.max(storage.offset, storage.buffer.size - after) / 4).fill(CANARY);
    this.#device.queue.writeBuffer(storage.buffer, 0, words.buffer, 0, storage.offset);
    this.#device.queue.writeBuffer(storage.buffer, after, words.buffer, 0, storage.buffer.size - after);
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
    this.#endPass();
    this.#ensureEncoder().clearBuffer(storage.buffer, storage.offset, roundUp4(storage.byteLength));
    storage.lastUse = this.#batch;
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
    if (this.#disposed) return;
    if (this.#guarded.delete(storage) && this.#guarding) {
      // Held back, not reused, until the next guard check has looked at its canaries.
      this.#held.push(storage);
      return;
    }
    this.#release(storage);
  }

  /** Gives a freed storage's buffer back to the pool once the work that uses it has completed. */
  #release(storage: GpuStorage): void {
    const release = () => this.storagePool.release(storage.buffer);
    if (storage.lastUse > this.#completed) {
      this.stats.deferredFrees++;
      this.#after(storage.lastUse, release);
    } else {
      release();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Guard mode
  // -------------------------------------------------------------------------------------------

  get guarding(): boolean {
    return this.#guarding;
  }

  /** Turns guard mode on or off; off releases the storages held back for a check. */
  enableGuards(on: boolean): void {
    this.#guarding = on;
    if (!on) for (const storage of this.#held.splice(0)) this.#release(storage);
  }

  /**
   * Reads the canaries of every guarded storage, alive or held, through one staging buffer (after the
   * work queued before it); releases the held storages and re-arms the live ones.
   */
  async checkGuards(): Promise<GuardViolation[]> {
    this.check();
    const held = this.#held.splice(0);
    const storages = [...this.#guarded, ...held];
    const regions = storages.flatMap((storage) => {
      const after = storage.offset + roundUp4(storage.byteLength);
      return [
        { storage, side: 'before' as const, from: 0, bytes: storage.offset },
        { storage, side: 'after' as const, from: after, bytes: storage.buffer.size - after },
      ];
    });
    const total = regions.reduce((sum, r) => sum + r.bytes, 0);
    const violations: GuardViolation[] = [];
    if (total > 0) {
      const staging = this.stagingPool.acquire(total);
      this.#endPass();
      const encoder = this.#ensureEncoder();
      let at = 0;
      for (const region of regions) {
        encoder.copyBufferToBuffer(region.storage.buffer, region.from, staging, at, region.bytes);
        region.storage.lastUse = this.#batch;
        at += region.bytes;
      }
      this.flush();
      await staging.mapAsync(MAP_READ_MODE, 0, total);
      const words = new Uint32Array(staging.getMappedRange(0, total).slice(0));
      staging.unmap();
      this.stagingPool.release(staging);
      at = 0;
      for (const region of regions) {
        let spoiled = 0;
        for (let i = at / 4; i < (at + region.bytes) / 4; i++) if (words[i] !== CANARY) spoiled++;
        at += region.bytes;
        const { byteLength, dtype } = region.storage;
        if (spoiled > 0) violations.push({ size: byteLength / 4, dtype, side: region.side, words: spoiled });
      }
      await this.#collectErrors();
    }
    for (const storage of this.#guarded) this.#writeCanaries(storage);
    for (const storage of held) this.#release(storage);
    return violations;
  }

  /** The buffer to bind where an optional input is absent. */
  get absent(): GPUBuffer {
    return this.#dummy;
  }

  // -------------------------------------------------------------------------------------------
  // Recording work
  // -------------------------------------------------------------------------------------------

  /** The pipeline of a program, compiled once per key. */
  pipeline(program: Program): GPUComputePipeline {
    const cached = this.#pipelines.get(program.key);
    if (cached) {
      this.stats.pipelineCacheHits++;
      return cached;
    }
    if (program.workgroupBytes !== undefined && program.workgroupBytes > this.limits.maxComputeWorkgroupStorageSize) {
      throw new DeviceError(
        BACKEND_NAME,
        'internal',
        `program ${program.key} needs ${program.workgroupBytes} bytes of workgroup memory; ` +
          `the device allows ${this.limits.maxComputeWorkgroupStorageSize}`,
      );
    }
    const layout = this.#layout(program.layout);
    const started = performance.now();
    this.#device.pushErrorScope('validation');
    const module = this.#device.createShaderModule({ code: program.code(), label: program.key });
    const pipeline = this.#device.createComputePipeline({
      layout,
      compute: { module, entryPoint: 'main' },
      label: program.key,
    });
    this.#watch(this.#device.popErrorScope(), `compiling ${program.key}`);
    this.#pipelines.set(program.key, pipeline);
    this.stats.pipelinesCreated++;
    if (DEBUG_PIPELINES)
      console.error(`webgpu: compiled ${program.key} in ${(performance.now() - started).toFixed(0)} ms`);
    this.stats.pipelineMs += performance.now() - started;
    return pipeline;
  }

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
    const pipeline = this.pipeline(program);
    if (params.length > UNIFORM_SLOT_WORDS)
      throw new Error(`program ${program.key}: ${params.length} parameter words, at most ${UNIFORM_SLOT_WORDS}`);
    const arena = this.#ensureArena();
    const slot = this.#arenaSlots++;
    this.#arenaWords.set(params, (slot * this.#slotBytes) / 4);
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: arena, offset: slot * this.#slotBytes, size: UNIFORM_SLOT_WORDS * 4 } },
    ];
    bindings.forEach((b, i) => {
      if (b instanceof GpuStorage) {
        b.lastUse = this.#batch;
        // A guarded storage is bound from its first element to the end of its buffer, canaries included.
        entries.push({
          binding: i + 1,
          resource: b.guarded ? { buffer: b.buffer, offset: b.offset } : { buffer: b.buffer },
        });
      } else {
        entries.push({ binding: i + 1, resource: { buffer: b } });
      }
    });
    const bindGroup = this.#device.createBindGroup({ layout: this.#layout(program.layout).bindGroupLayout, entries });
    const pass = this.#ensurePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(groups[0], groups[1], groups[2]);
    this.stats.dispatches++;
    this.#afterRecord();
  }

  /** Submits the pending batch, if any. */
  flush(): void {
    if (!this.#encoder || this.#disposed) return;
    this.#endPass();
    const encoder = this.#encoder;
    const arena = this.#arena;
    this.#encoder = null;
    this.#arena = null;
    if (arena && this.#arenaSlots > 0) {
      this.#device.queue.writeBuffer(arena, 0, this.#arenaWords.buffer, 0, this.#arenaSlots * this.#slotBytes);
    }
    this.#arenaSlots = 0;
    const id = this.#batch++;
    this.#device.pushErrorScope('out-of-memory');
    this.#device.pushErrorScope('validation');
    this.#device.queue.submit([encoder.finish()]);
    this.#watch(this.#device.popErrorScope(), 'submitting work');
    this.#watch(this.#device.popErrorScope(), 'submitting work');
    this.stats.submits++;
    if (arena) this.#after(id, () => this.uniformPool.release(arena));
    const done = this.#device.queue.onSubmittedWorkDone().then(
      () => this.#complete(id),
      () => this.#complete(id),
    );
    this.#lastDone = done;
  }

  /** Submits pending work and waits until the GPU has finished everything submitted. */
  async synchronize(): Promise<void> {
    this.check();
    this.flush();
    await this.#lastDone;
    await this.#collectErrors();
  }

  /** Copies a storage's first `bytes` back to the host through a staging buffer. */
  async read(storage: GpuStorage, bytes: number): Promise<ArrayBuffer> {
    this.check();
    if (bytes === 0) return new ArrayBuffer(0);
    const staging = this.stagingPool.acquire(bytes);
    this.#endPass();
    this.#ensureEncoder().copyBufferToBuffer(storage.buffer, storage.offset, staging, 0, roundUp4(bytes));
    storage.lastUse = this.#batch;
    this.flush();
    try {
      await staging.mapAsync(MAP_READ_MODE, 0, roundUp4(bytes));
    } catch (cause) {
      await this.#collectErrors();
      this.check();
      throw new DeviceError(
        BACKEND_NAME,
        'internal',
        `reading a tensor back failed: ${cause instanceof Error ? cause.message : String(cause)}`,
        cause,
      );
    }
    const copy = staging.getMappedRange(0, roundUp4(bytes)).slice(0, bytes);
    staging.unmap();
    this.stagingPool.release(staging);
    await this.#collectErrors();
    return copy;
  }

  /**
   * Throws the DeviceError that describes why the device cannot take work: lost, disposed, or an
   * error an earlier operation left behind (thrown once).
   */
  check(): void {
    if (this.#disposed) {
      throw new DeviceError(
        BACKEND_NAME,
        'device-lost',
        'the backend was disposed; create it again (setBackend, or createWebGPUBackend)',
      );
    }
    if (this.#lost) {
      throw new DeviceError(
        BACKEND_NAME,
        'device-lost',
        `the GPU device was lost (${this.#lost.reason}: ${this.#lost.message || 'no message'}); ` +
          `dispose the backend and create it again`,
      );
    }
    const error = this.#error;
    if (error) {
      this.#error = null;
      throw error;
    }
  }

  /** Waits for submitted work, destroys every buffer and the device. Safe to call twice. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    try {
      if (!this.#lost) {
        this.flush();
        await this.#lastDone;
      }
    } finally {
      this.#disposed = true;
      this.#encoder = null;
      this.#pass = null;
      this.#afterBatch.clear();
      for (const storage of this.#live) storage.freed = true;
      this.#live.clear();
      this.stats.liveStorages = 0;
      this.storagePool.destroyAll();
      this.stagingPool.destroyAll();
      this.uniformPool.destroyAll();
      this.#dummy.destroy();
      this.#pipelines.clear();
      this.#layouts.clear();
      this.#device.onuncapturederror = null;
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
      storage: { ...this.storagePool.stats },
      staging: { ...this.stagingPool.stats },
      uniform: { ...this.uniformPool.stats },
    };
  }

  // -------------------------------------------------------------------------------------------

  #ensureEncoder(): GPUCommandEncoder {
    this.#encoder ??= this.#device.createCommandEncoder({ label: `batch ${this.#batch}` });
    return this.#encoder;
  }

  #ensurePass(): GPUComputePassEncoder {
    this.#pass ??= this.#ensureEncoder().beginComputePass();
    return this.#pass;
  }

  #endPass(): void {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
  }

  #ensureArena(): GPUBuffer {
    this.#arena ??= this.uniformPool.acquire(this.#maxBatch * this.#slotBytes);
    return this.#arena;
  }

  /** A full batch is submitted at once, so no batch outgrows its uniform arena. */
  #afterRecord(): void {
    if (this.#arenaSlots >= this.#maxBatch) this.flush();
  }

  #after(batch: number, fn: () => void): void {
    if (batch <= this.#completed) {
      fn();
      return;
    }
    let list = this.#afterBatch.get(batch);
    if (!list) {
      list = [];
      this.#afterBatch.set(batch, list);
    }
    list.push(fn);
  }

  /** Batches complete in submission order: everything up to `id` is done. */
  #complete(id: number): void {
    if (this.#disposed || id <= this.#completed) return;
    this.#completed = id;
    for (const [batch, list] of this.#afterBatch) {
      if (batch > id) continue;
      this.#afterBatch.delete(batch);
      for (const fn of list) fn();
    }
  }

  #layout(signature: string): GPUPipelineLayout & { bindGroupLayout: GPUBindGroupLayout } {
    const cached = this.#layouts.get(signature);
    if (cached) return cached;
    const entries: GPUBindGroupLayoutEntry[] = [
      { binding: 0, visibility: 4 /* COMPUTE */, buffer: { type: 'uniform' } },
    ];
    [...signature].forEach((kind, i) => {
      entries.push({ binding: i + 1, visibility: 4, buffer: { type: kind === 'w' ? 'storage' : 'read-only-storage' } });
    });
    const bindGroupLayout = this.#device.createBindGroupLayout({ entries, label: signature });
    const layout = Object.assign(this.#device.createPipelineLayout({ bindGroupLayouts: [bindGroupLayout] }), {
      bindGroupLayout,
    });
    this.#layouts.set(signature, layout);
    return layout;
  }

  #watch(scope: Promise<GPUError | null>, what = 'allocating a buffer'): void {
    // Long runs without a readback would otherwise pile up settled promises.
    if (this.#scopes.length >= 256) this.#scopes = [Promise.all(this.#scopes).then(() => undefined)];
    this.#scopes.push(
      scope.then(
        (error) => {
          if (error) this.#record(error, what);
        },
        () => undefined,
      ),
    );
  }

  #record(error: GPUError, what = 'running work'): void {
    if (this.#error || this.#disposed) return;
    const oom = error.constructor?.name === 'GPUOutOfMemoryError' || /out of memory|OutOfMemory/i.test(error.message);
    this.#error = new DeviceError(BACKEND_NAME, oom ? 'out-of-memory' : 'internal', `${what}: ${error.message}`, error);
  }

  async #collectErrors(): Promise<void> {
    const scopes = this.#scopes;
    this.#scopes = [];
    await Promise.all(scopes);
    this.check();
  }
}

function roundUp4(n: number): number {
  return Math.ceil(n / 4) * 4;
}
