/** embedding: rows of table [V, E] gathered at int32 ids [...] → [..., E], and its backward (a scatter-add). */
import type { EmbeddingAttrs, EmbeddingBackwardAttrs, OutputSpec, TensorView } from '@diff-transformer/core';
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

/**
 * Where each vocabulary row occurs among the ids, in id order: occurrences[starts[v] .. starts[v + 1])
 * are the positions whose id is v (a counting sort, linear in ids and vocabulary). A scatter-add that
 * walks these lists row by row adds each row's terms in the order of the ids, whoever owns the row.
 */
export function occurrenceLists(ids: Int32Array, vocabSize: number): { starts: Int32Array; occurrences: Int32Array } {
  const starts = new Int32Array(vocabSize + 1);
  for (let i = 0; i < ids.length; i++) starts[ids[i] + 1]++;
  for (let v = 0; v < vocabSize; v++) starts[v + 1] += starts[v];
  const next = starts.slice(0, vocabSize);
  const occurrences = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) occurrences[next[ids[i]]++] = i;
  return { starts, occurrences };
}

/**
 * The table's gradient [V, E]: row v is the sum, in id order and in doubles, of the rows of dy whose id
 * is v; rows of ids that never occur are 0.
 */
export function embeddingBackward(
  ids: TensorView,
  dy: TensorView,
  attrs: EmbeddingBackwardAttrs,
  _out: OutputSpec,
  y: Float32Array,
): void {
  const upstream = floats(dy);
  const width = dy.shape[dy.shape.length - 1];
  const { starts, occurrences } = occurrenceLists(ints(ids), attrs.vocabSize);
  const row = new Float64Array(width);
  for (let v = 0; v < attrs.vocabSize; v++) {
    row.fill(0);
    for (let o = starts[v]; o < starts[v + 1]; o++) {
      const from = occurrences[o] * width;
      for (let j = 0; j < width; j++) row[j] += upstream[from + j];
    }
    y.set(row, v * width);
  }
}
