/** embedding: rows of table [V, E] gathered at int32 ids [...] → [..., E]. */
import type { EmbeddingAttrs, OutputSpec, TensorView } from '@diff-transformer/core';
import { allocateFloatOutput, floats, ints } from '../storage.js';

export function embedding(table: TensorView, ids: TensorView, _attrs: EmbeddingAttrs, out: OutputSpec): Float32Array {
  const weights = floats(table);
  const index = ints(ids);
  const width = table.shape[1];
  const y = allocateFloatOutput(out);
  // Core range-checked the ids on the host, so every row exists.
  for (let i = 0; i < index.length; i++) {
    const row = index[i] * width;
    y.set(weights.subarray(row, row + width), i * width);
  }
  return y;
}
