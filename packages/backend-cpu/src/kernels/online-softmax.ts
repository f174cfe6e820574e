/**
 * Pieces shared by the two streaming attention kernels. Keys are visited in blocks of KEY_BLOCK: a
 * block's scores go into a small scratch array, then the running maximum, running sum and value
 * accumulators of the online softmax (Milakov & Gimelshein 2018; FlashAttention) are updated once per
 * block. Nothing of size T×S is ever allocated, so memory stays linear in the context length.
 */
import type { AttentionMaskAttrs } from '@diff-transformer/core';
import { dot } from './dot.js';

/** Keys per block: enough to amortise the per-block rescaling, small enough for the scores to stay in L1. */
export const KEY_BLOCK = 64;

/** How many keys query t reads: [0, keyLength), cut at its own position keyOffset + t when causal. */
export function visibleKeys(t: number, attrs: AttentionMaskAttrs): number {
  return attrs.causal ? Math.min(attrs.keyLength, attrs.keyOffset + t + 1) : attrs.keyLength;
}

/**
 * scores[j] = scale · q · k_(j) for `count` keys starting at kOffset, keyStride apart; returns the
 * largest score of the block.
 */
export function scoreBlock(
  Q: Float32Array,
  qOffset: number,
  K: Float32Array,
  kOffset: number,
  keyStride: number,
  width: number,
  count: number,
  scale: number,
  scores: Float64Array,
): number {
  let max = -Infinity;
  for (let j = 0; j < count; j++) {
    const s = scale * dot(Q, qOffset, K, kOffset + j * keyStride, width);
    scores[j] = s;
    if (s > max) max = s;
  }
  return max;
}

/**
 * acc[0 .. width) *= factor: when a block raises a map's running maximum from m to m', what was summed
 * and accumulated under m is rescaled by e^(m − m') to be relative to m'.
 */
export function scaleInPlace(acc: Float64Array, width: number, factor: number): void {
  for (let c = 0; c < width; c++) acc[c] *= factor;
}

/**
 * Turns a block's scores into unnormalised probabilities e^(score − max) in place and returns their sum.
 */
export function exponentiate(scores: Float64Array, count: number, max: number): number {
  let sum = 0;
  for (let j = 0; j < count; j++) {
    const p = Math.exp(scores[j] - max);
    scores[j] = p;
    sum += p;
  }
  return sum;
}
