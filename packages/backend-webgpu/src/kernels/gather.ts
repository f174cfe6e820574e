/**
 * embedding, rotary, narrow and cacheWrite: one thread per output element; embedding's backward in
 * two passes (link each id's positions, then sum them in order).
 */
import type {
  CacheWriteAttrs,
  EmbeddingAttrs,
  EmbeddingBackwardAttrs,
  NarrowAttrs,
  OutputSpec,
  RotaryAttrs,
  TensorView,
} from '@diff-transformer/core';
import type { Runtime } from '../device/runtime.js';
import type { GpuStorage } from '../device/storage.js';
import { elementGrid, grid, params } from '../shaders/common.js';
import {
  CACHE_WRITE,
  EMBEDDING,
  EMBEDDING_CHAIN_THREADS,
  EMBEDDING_CHAINS,
  EMBEDDING_SUM,
  NARROW,
  ROTARY,
} from '../shaders/gather.js';
import { count, outputFor, storageOf } from './storage.js';

export function embedding(
  rt: Runtime,
  table: TensorView,
  ids: TensorView,
  _attrs: EmbeddingAttrs,
  out: OutputSpec,
): GpuStorage {
  const y = outputFor(rt, out);
  const width = table.shape[1];
  const n = count(ids) * width;
  rt.dispatch(EMBEDDING, [storageOf(table), storageOf(ids), y], params().u(n, width).words, elementGrid(n));
  return y;
}

export function rotary(
  rt: Runtime,
  x: TensorView,
  cos: TensorView,
  sin: TensorView,
  attrs: RotaryAttrs,
  out: OutputSpec,
): GpuStorage {
  const y = outputFor(rt, out);
  const [, tokens, heads, width] = x.shape;
  const n = count(x);
  const p = params().u(
    n,
    tokens,
    heads,
    width,
    cos.shape[1],
    attrs.positionOffset,
    attrs.layout === 'interleaved' ? 1 : 0,
  );
  rt.dispatch(ROTARY, [storageOf(x), storageOf(cos), storageOf(sin), y], p.words, elementGrid(n));
  return y;
}

export function narrow(rt: Runtime, x: TensorView, attrs: NarrowAttrs, out: OutputSpec): GpuStorage {
  const y = outputFor(rt, out);
  const { axis, start, length } = attrs;
  let inner = 1;
  for (let i = axis + 1; i < x.shape.length; i++) inner *= x.shape[i];
  const n = count(out);
  const p = params().u(n, length * inner, x.shape[axis] * inner, start * inner);
  rt.dispatch(NARROW, [storageOf(x), y], p.words, elementGrid(n));
  return y;
}

export function cacheWrite(rt: Runtime, cache: TensorView, values: TensorView, attrs: CacheWriteAttrs): void {
  let row = 1;
  for (let i = 2; i < cache.shape.length; i++) row *= cache.shape[i];
  const n = count(values);
  const p = params().u(n, values.shape[1] * row, cache.shape[1] * row, attrs.position * row);
  rt.dispatch(CACHE_WRITE, [storageOf(values), storageOf(cache)], p.words, elementGrid(n));
}

/**
 * The table's gradient: row v = Σ dy[i] over the positions i with ids[i] = v, added in the order of
 * the ids whatever the device (no float atomics): the positions of each id are linked in order, then
 * one thread per (v, column) walks its row's chain. Costs V·N id comparisons (spread over V threads)
 * and N·E additions.
 */
export function embeddingBackward(
  rt: Runtime,
  ids: TensorView,
  dy: TensorView,
  attrs: EmbeddingBackwardAttrs,
  out: OutputSpec,
): GpuStorage {
  const y = outputFor(rt, out);
  const n = count(ids);
  const width = out.shape[1];
  const vocab = attrs.vocabSize;
  const first = rt.allocate(vocab * 4, 'int32');
  const next = rt.allocate(Math.max(n, 1) * 4, 'int32');
  try {
    rt.dispatch(
      EMBEDDING_CHAINS,
      [storageOf(ids), first, next],
      params().u(n, vocab).words,
      grid(Math.ceil(vocab / EMBEDDING_CHAIN_THREADS)),
    );
    const total = vocab * width;
    rt.dispatch(EMBEDDING_SUM, [first, next, storageOf(dy), y], params().u(total, width).words, elementGrid(total));
  } finally {
    rt.free(first);
    rt.free(next);
  }
  return y;
}
