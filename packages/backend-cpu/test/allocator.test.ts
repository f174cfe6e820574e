/** The heap's allocator: alignment, best fit, merging of free neighbours, giving the top back, the peak. */
import { describe, expect, it } from 'vitest';
import { ALIGNMENT, Allocator } from '../src/heap/allocator.js';

function allocator(base = 100) {
  const ensured: number[] = [];
  return { heap: new Allocator(base, (top) => ensured.push(top)), ensured };
}

describe('Allocator', () => {
  it('hands out aligned, non-overlapping blocks from an aligned base and asks for room above the top', () => {
    const { heap, ensured } = allocator(100);
    const a = heap.allocate(1);
    const b = heap.allocate(100);
    const c = heap.allocate(0);
    expect([a, b, c]).toEqual([128, 192, 320]);
    for (const offset of [a, b, c]) expect(offset % ALIGNMENT).toBe(0);
    expect(ensured).toEqual([192, 320, 384]);
    expect(heap.stats).toEqual({ usedBytes: 256, peakBytes: 256, topBytes: 384 });
  });

  it('reuses the smallest free block that fits, splitting it', () => {
    const { heap } = allocator(0);
    const big = heap.allocate(640);
    heap.allocate(64); // keeps `big` from touching the top
    const small = heap.allocate(128);
    heap.allocate(64);
    heap.free(big);
    heap.free(small);
    expect(heap.allocate(100)).toBe(small); // 128 fits better than 640
    expect(heap.allocate(64)).toBe(big); // the rest goes to the large block, split from its front
    expect(heap.allocate(64)).toBe(big + 64);
  });

  it('merges a freed block with free neighbours on both sides', () => {
    const { heap } = allocator(0);
    const [a, b, c] = [heap.allocate(64), heap.allocate(64), heap.allocate(64)];
    const guard = heap.allocate(64);
    heap.free(a);
    heap.free(c);
    heap.free(b);
    // One block of 192 now: a request of 192 fits at a without growing the top.
    expect(heap.allocate(192)).toBe(a);
    expect(heap.stats.topBytes).toBe(guard + 64);
  });

  it('gives a free block at the top back, so the top falls when the last tensors go', () => {
    const { heap } = allocator(0);
    const a = heap.allocate(64);
    const b = heap.allocate(64);
    heap.free(a);
    expect(heap.stats.topBytes).toBe(128);
    heap.free(b); // merges with a, reaches the top
    expect(heap.stats).toEqual({ usedBytes: 0, peakBytes: 128, topBytes: 0 });
    heap.resetPeak();
    expect(heap.stats.peakBytes).toBe(0);
  });

  it('refuses to free what it did not hand out', () => {
    const { heap } = allocator(0);
    const a = heap.allocate(64);
    heap.free(a);
    expect(() => heap.free(a)).toThrow(/no block at offset 0/);
  });

  it('survives a random workload with every live block disjoint and the accounting exact', () => {
    const { heap } = allocator(0);
    const live = new Map<number, number>();
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    for (let step = 0; step < 2000; step++) {
      if (live.size > 0 && random() < 0.45) {
        const offsets = [...live.keys()];
        const offset = offsets[Math.floor(random() * offsets.length)];
        heap.free(offset);
        live.delete(offset);
      } else {
        const bytes = 1 + Math.floor(random() * 5000);
        live.set(heap.allocate(bytes), Math.ceil(bytes / ALIGNMENT) * ALIGNMENT);
      }
    }
    const blocks = [...live].sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < blocks.length; i++)
      expect(blocks[i][0]).toBeGreaterThanOrEqual(blocks[i - 1][0] + blocks[i - 1][1]);
    expect(heap.stats.usedBytes).toBe(blocks.reduce((sum, [, size]) => sum + size, 0));
    for (const [offset] of blocks) heap.free(offset);
    expect(heap.stats).toMatchObject({ usedBytes: 0, topBytes: 0 });
  });
});
