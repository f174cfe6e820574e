import type { CacheWriteAttrs, NarrowAttrs } from '@diff-transformer/core';
import type { RefTensor } from './tensor.js';
import { elementCount, refZeros } from './tensor.js';

/** x restricted to [start, start + length) along `axis`. */
export function narrow(x: RefTensor, attrs: NarrowAttrs): RefTensor {
  const outer = elementCount(x.shape.slice(0, attrs.axis));
  const inner = elementCount(x.shape.slice(attrs.axis + 1));
  const dim = x.shape[attrs.axis];
  const shape = [...x.shape];
  shape[attrs.axis] = attrs.length;
  const out = refZeros(shape);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < attrs.length; i++) {
      const from = (o * dim + attrs.start + i) * inner;
      out.data.set(x.data.subarray(from, from + inner), (o * attrs.length + i) * inner);
    }
  }
  return out;
}

/** The gradient of narrow: dy [..., length, ...] written into zeros of the input's shape at [start, start + length). */
export function narrowBackward(dy: RefTensor, inputShape: readonly number[], attrs: NarrowAttrs): RefTensor {
  const outer = elementCount(inputShape.slice(0, attrs.axis));
  const inner = elementCount(inputShape.slice(attrs.axis + 1));
  const dim = inputShape[attrs.axis];
  const dx = refZeros(inputShape);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < attrs.length; i++) {
      const from = (o * attrs.length + i) * inner;
      dx.data.set(dy.data.subarray(from, from + inner), (o * dim + attrs.start + i) * inner);
    }
  }
  return dx;
}

/**
 * The cache [B, Smax, ...rest] after writing values [B, T, ...rest] at rows [position, position + T).
 * Unlike the kernel, which writes in place, the reference returns a new tensor.
 */
export function cacheWrite(cache: RefTensor, values: RefTensor, attrs: CacheWriteAttrs): RefTensor {
  const [batch, capacity] = cache.shape;
  const tokens = values.shape[1];
  const row = elementCount(cache.shape.slice(2));
  const out: RefTensor = { shape: [...cache.shape], data: Float64Array.from(cache.data) };
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < tokens; t++) {
      const from = (b * tokens + t) * row;
      out.data.set(values.data.subarray(from, from + row), (b * capacity + attrs.position + t) * row);
    }
  }
  return out;
}
