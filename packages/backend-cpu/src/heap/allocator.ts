/**
 * A best-fit allocator of byte ranges, for tensors and kernel scratch in the WebAssembly memory.
 * Blocks are 64-byte aligned (a cache line: no two tensors share one, and SIMD loads are aligned).
 * Freed blocks are merged with free neighbours; a free block that reaches the top of the heap is
 * given back to it, so a model's repeated forward passes reuse the same few ranges.
 *
 * The free list is a plain array sorted by offset: a model keeps a few hundred blocks alive at most,
 * and each allocation sits next to a kernel that does far more work than a linear scan.
 */

export const ALIGNMENT = 64;

interface FreeBlock {
  offset: number;
  size: number;
}

export interface AllocatorStats {
  /** Bytes in blocks handed out and not yet freed (rounded up to the alignment). */
  readonly usedBytes: number;
  /** The most `usedBytes` reached since creation or the last `resetPeak()`. */
  readonly peakBytes: number;
  /** End of the highest block: what the memory must hold. */
  readonly topBytes: number;
}

export class Allocator {
  readonly #free: FreeBlock[] = [];
  readonly #sizes = new Map<number, number>();
  #top: number;
  #used = 0;
  #peak = 0;

  /**
   * @param base   first byte the allocator may hand out (rounded up to the alignment)
   * @param ensure called with the new top before a block above the old top is handed out; it must
   *               make the memory that large or throw
   */
  constructor(
    base: number,
    private readonly ensure: (top: number) => void,
  ) {
    this.#top = roundUp(base);
  }

  /** A block of at least `bytes` bytes (at least one alignment unit); returns its offset. */
  allocate(bytes: number): number {
    const size = roundUp(Math.max(bytes, 1));
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const block = this.#free[i];
      if (block.size >= size && (best < 0 || block.size < this.#free[best].size)) best = i;
    }
    let offset: number;
    if (best >= 0) {
      const block = this.#free[best];
      offset = block.offset;
      if (block.size === size) this.#free.splice(best, 1);
      else {
        block.offset += size;
        block.size -= size;
      }
    } else {
      // Nothing fits: take it from the top (no free block touches the top, see free()).
      offset = this.#top;
      this.ensure(offset + size);
      this.#top = offset + size;
    }
    this.#sizes.set(offset, size);
    this.#used += size;
    if (this.#used > this.#peak) this.#peak = this.#used;
    return offset;
  }

  /** Frees a block returned by `allocate`. */
  free(offset: number): void {
    const size = this.#sizes.get(offset);
    if (size === undefined) throw new Error(`Allocator.free: no block at offset ${offset}`);
    this.#sizes.delete(offset);
    this.#used -= size;

    // Insert in offset order, then merge with the neighbours it touches.
    let lo = 0;
    let hi = this.#free.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#free[mid].offset < offset) lo = mid + 1;
      else hi = mid;
    }
    let block: FreeBlock = { offset, size };
    let index = lo;
    const next = this.#free[index];
    if (next && offset + size === next.offset) {
      block.size += next.size;
      this.#free.splice(index, 1);
    }
    const previous = this.#free[index - 1];
    if (previous && previous.offset + previous.size === offset) {
      previous.size += block.size;
      block = previous;
      index--;
    } else {
      this.#free.splice(index, 0, block);
    }
    // A free block at the top goes back to the unallocated space above it.
    if (block.offset + block.size === this.#top) {
      this.#free.splice(index, 1);
      this.#top = block.offset;
    }
  }

  /** Size of the block at `offset` (rounded up), or undefined when none is allocated there. */
  sizeOf(offset: number): number | undefined {
    return this.#sizes.get(offset);
  }

  get stats(): AllocatorStats {
    return { usedBytes: this.#used, peakBytes: this.#peak, topBytes: this.#top };
  }

  /** Starts a new peak measurement from the current use. */
  resetPeak(): void {
    this.#peak = this.#used;
  }
}

function roundUp(bytes: number): number {
  return Math.ceil(bytes / ALIGNMENT) * ALIGNMENT;
}
