/**
 * The heap the C kernels work in: one memory that holds every tensor of the backend and every
 * kernel's scratch, so the kernels take byte offsets into it and nothing is copied. The WebAssembly
 * engine's is a WebAssembly.Memory (shared between threads when they are possible), the native
 * engine's the addon's reserved address space. The engine owns it; `HeapStorage` handles name its
 * blocks.
 *
 * Typed-array views are made on demand over `memory.buffer`: growing a memory replaces its buffer
 * (a private one is detached, a shared one keeps its old, shorter length), so a view is never kept
 * across an allocation.
 */
import type { GuardViolation } from '@diff-transformer/core';
import { DeviceError } from '@diff-transformer/core';
import { GUARD_WORDS, Guards } from '../guards.js';
import type { AllocatorStats } from './allocator.js';
import { Allocator } from './allocator.js';

export const PAGE_BYTES = 65536;

/** A tensor's storage on the heap: `length` elements of `dtype` from byte `offset`. */
export class HeapStorage {
  constructor(
    readonly offset: number,
    readonly length: number,
    readonly dtype: 'float32' | 'int32',
  ) {}
}

export interface HeapStats extends AllocatorStats {
  /** Bytes the memory holds now (it grows, never shrinks). */
  readonly capacityBytes: number;
}

/** What the heap needs of its memory: a WebAssembly.Memory, or the native engine's. */
export interface HeapMemory {
  readonly buffer: ArrayBufferLike;
  grow(pages: number): number;
}

export class KernelHeap {
  readonly #allocator: Allocator;
  readonly #guards = new Guards<HeapStorage>();
  /** The highest top the allocator asked for: the memory a reserved heap has touched. */
  #highWater = 0;

  /**
   * @param base     the first byte the heap may hand out: past the WebAssembly module's own stack and
   *                 data (its `__heap_base`), or the native heap's first offset
   * @param reserved the buffer spans the whole address space from the start (the native heap, whose
   *                 pages the system commits when first touched): its capacity is the high water
   */
  constructor(
    readonly memory: HeapMemory,
    base: number,
    private readonly maximumBytes: number,
    private readonly reserved = false,
  ) {
    this.#allocator = new Allocator(base, (top) => this.#reserve(top));
  }

  /** A block of `bytes` bytes (uninitialised); returns its offset. */
  allocate(bytes: number): number {
    return this.#allocator.allocate(bytes);
  }

  free(offset: number): void {
    this.#allocator.free(offset);
  }

  /**
   * A new tensor storage of `length` elements, uninitialised (kernels overwrite every element). In guard
   * mode its block holds 64 bytes of canaries, the tensor, then canaries to the end of the block.
   */
  allocateTensor(dtype: 'float32' | 'int32', length: number): HeapStorage {
    if (!this.#guards.enabled) return new HeapStorage(this.allocate(4 * length), length, dtype);
    const block = this.allocate(4 * (length + 2 * GUARD_WORDS));
    const bytes = this.#allocator.sizeOf(block) as number;
    const storage = new HeapStorage(block + 4 * GUARD_WORDS, length, dtype);
    this.#guards.add(storage, {
      size: length,
      dtype,
      words: () => new Int32Array(this.memory.buffer, block, bytes / 4),
      release: () => this.free(block),
    });
    return storage;
  }

  freeTensor(storage: HeapStorage): void {
    if (!this.#guards.free(storage)) this.free(storage.offset);
  }

  /** Guard mode (core's BackendGuards): tensors allocated while it is on get canaries around them. */
  enableGuards(on: boolean): void {
    this.#guards.enable(on);
  }

  get guarding(): boolean {
    return this.#guards.enabled;
  }

  /** The guards that lost their canary since the last check (kernels have all returned: nothing runs). */
  checkGuards(): GuardViolation[] {
    return this.#guards.check();
  }

  floats(storage: HeapStorage): Float32Array {
    return new Float32Array(this.memory.buffer, storage.offset, storage.length);
  }

  ints(storage: HeapStorage): Int32Array {
    return new Int32Array(this.memory.buffer, storage.offset, storage.length);
  }

  /** A view of the storage as its own dtype. */
  array(storage: HeapStorage): Float32Array | Int32Array {
    return storage.dtype === 'int32' ? this.ints(storage) : this.floats(storage);
  }

  get stats(): HeapStats {
    const capacityBytes = this.reserved ? this.#highWater : this.memory.buffer.byteLength;
    return { ...this.#allocator.stats, capacityBytes };
  }

  resetPeak(): void {
    this.#allocator.resetPeak();
  }

  /** Grows the memory to hold `top` bytes: by a quarter at least, so that growth is rare. */
  #reserve(top: number): void {
    this.#highWater = Math.max(this.#highWater, top);
    const have = this.memory.buffer.byteLength;
    if (top <= have) return;
    if (top > this.maximumBytes) {
      throw new DeviceError(
        'cpu',
        'out-of-memory',
        `out of memory: ${mebibytes(top)} MiB needed, ` +
          `the heap holds at most ${mebibytes(this.maximumBytes)} MiB; ` +
          'free tensors you no longer need (dispose(), tidy()) or use smaller shapes',
      );
    }
    const needed = Math.ceil((top - have) / PAGE_BYTES);
    const generous = Math.min(
      Math.max(needed, Math.ceil(have / 4 / PAGE_BYTES)),
      (this.maximumBytes - have) / PAGE_BYTES,
    );
    try {
      this.memory.grow(generous);
    } catch {
      try {
        this.memory.grow(needed);
      } catch (cause) {
        throw new DeviceError(
          'cpu',
          'out-of-memory',
          `out of memory: the system refused to grow the WebAssembly memory to ${mebibytes(top)} MiB`,
          cause,
        );
      }
    }
  }
}

function mebibytes(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}
