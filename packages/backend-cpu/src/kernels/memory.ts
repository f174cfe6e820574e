/** The memory kernels: narrow (a sliced copy) and cacheWrite (the one in-place kernel). */
import type { CacheWriteAttrs, NarrowAttrs, OutputSpec, TensorView } from '@diff-transformer/core';
import type { CpuStorage } from '../storage.js';

/** x sliced to [start, start + length) along `axis`, as a copy. Works for float32 and int32 alike. */
export function narrow(x: TensorView, attrs: NarrowAttrs, _out: OutputSpec, y: CpuStorage): void {
  const input = x.storage as CpuStorage;
  const { axis, start, length } = attrs;
  let outer = 1;
  for (let i = 0; i < axis; i++) outer *= x.shape[i];
  let inner = 1;
  for (let i = axis + 1; i < x.shape.length; i++) inner *= x.shape[i];
  const dim = x.shape[axis];
  // Each outer index contributes one contiguous run of length · inner elements.
  const run = length * inner;
  for (let o = 0; o < outer; o++) {
    const from = (o * dim + start) * inner;
    y.set(input.subarray(from, from + run), o * run);
  }
}

/** Copies values [B, T, ...rest] into cache [B, Smax, ...rest] at rows [position, position + T). */
export function cacheWrite(cache: TensorView, values: TensorView, attrs: CacheWriteAttrs): void {
  const target = cache.storage as CpuStorage;
  const source = values.storage as CpuStorage;
  const [batch, capacity] = cache.shape;
  const tokens = values.shape[1];
  let row = 1;
  for (let i = 2; i < cache.shape.length; i++) row *= cache.shape[i];
  const run = tokens * row;
  for (let b = 0; b < batch; b++) {
    target.set(source.subarray(b * run, (b + 1) * run), (b * capacity + attrs.position) * row);
  }
}
