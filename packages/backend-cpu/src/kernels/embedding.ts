/** embedding: rows of table [V, E] gathered at int32 ids [...] → [..., E]. */
import type { EmbeddingAttrs, OutputSpec, TensorView } from '@diff-transformer/core';
import { floats, ints } from '../storage.js';

export function embedding(
  table: TensorView,
  ids: TensorView,
  _attrs: EmbeddingAttrs,
  _out: OutputSpec,
  y: Float32Array,
): void {
  const weights = floats(table);
  const index = ints(ids);
  const width = table.shape[1];
  // Core range-checked the ids on the host, so every row exists.
  for (let i = 0; i < index.length; i++) {
    const row = index[i] * width;
    y.set(weights.subarray(row, row + width), i * width);
  }
}
