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
 * largest score of the block. Four keys at a time share each load of q[p] and give four independent
 * sums.
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
  let j = 0;
  for (; j + 4 <= count; j += 4) {
    const k0 = kOffset + j * keyStride;
    const k1 = k0 + keyStride;
    const k2 = k1 + keyStride;
    const k3 = k2 + keyStride;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let p = 0; p < width; p++) {
      const x = Q[qOffset + p];
      s0 += x * K[k0 + p];
      s1 += x * K[k1 + p];
      s2 += x * K[k2 + p];
      s3 += x * K[k3 + p];
    }
    scores[j] = scale * s0;
    scores[j + 1] = scale * s1;
    scores[j + 2] = scale * s2;
    scores[j + 3] = scale * s3;
  }
  for (; j < count; j++) scores[j] = scale * dot(Q, qOffset, K, kOffset + j * keyStride, width);
  let max = -Infinity;
  for (j = 0; j < count; j++) if (scores[j] > max) max = scores[j];
  return max;
}

/**
 * Rounds a block's scores to float32 and returns the block's new maximum. The kernels that save a
 * log-sum-exp for the backward, and the backward that recomputes probabilities from it, both round
 * their scores so: where one key dominates a row (scores of 1e4), the saved float32 log-sum-exp is then
 * that key's score exactly and its recomputed probability exactly 1, where a double score would be off
 * from it by up to half a float32 step (5e-4 at 1e4) and so would every probability of the row.
 */
export function roundScores(scores: Float64Array, count: number): number {
  let max = -Infinity;
  for (let j = 0; j < count; j++) {
    const s = Math.fround(scores[j]);
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

/**
 * acc[c] += Σ_j weights[j] · V[row_j + c] over a block of `count` value rows (row_j = vOffset + j·rowStride).
 * Four value columns at a time are summed in locals across the block, so the accumulator is loaded and
 * stored once per block rather than once per key.
 */
export function accumulateValues(
  V: Float32Array,
  vOffset: number,
  rowStride: number,
  count: number,
  weights: Float64Array,
  acc: Float64Array,
  width: number,
): void {
  let c = 0;
  for (; c + 4 <= width; c += 4) {
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    for (let j = 0, row = vOffset + c; j < count; j++, row += rowStride) {
      const p = weights[j];
      a0 += p * V[row];
      a1 += p * V[row + 1];
      a2 += p * V[row + 2];
      a3 += p * V[row + 3];
    }
    acc[c] += a0;
    acc[c + 1] += a1;
    acc[c + 2] += a2;
    acc[c + 3] += a3;
  }
  for (; c < width; c++) {
    let a = 0;
    for (let j = 0, row = vOffset + c; j < count; j++, row += rowStride) a += weights[j] * V[row];
    acc[c] += a;
  }
}

/**
 * The two maps of differential attention share their value rows: accumulates both weightings in one
 * pass over the block (as accumulateValues, with eight running sums per four columns).
 */
export function accumulateValuesTwice(
  V: Float32Array,
  vOffset: number,
  rowStride: number,
  count: number,
  weights1: Float64Array,
  weights2: Float64Array,
  acc1: Float64Array,
  acc2: Float64Array,
  width: number,
): void {
  let c = 0;
  for (; c + 4 <= width; c += 4) {
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    let b0 = 0;
    let b1 = 0;
    let b2 = 0;
    let b3 = 0;
    for (let j = 0, row = vOffset + c; j < count; j++, row += rowStride) {
      const p = weights1[j];
      const r = weights2[j];
      const x0 = V[row];
      const x1 = V[row + 1];
      const x2 = V[row + 2];
      const x3 = V[row + 3];
      a0 += p * x0;
      a1 += p * x1;
      a2 += p * x2;
      a3 += p * x3;
      b0 += r * x0;
      b1 += r * x1;
      b2 += r * x2;
      b3 += r * x3;
    }
    acc1[c] += a0;
    acc1[c + 1] += a1;
    acc1[c + 2] += a2;
    acc1[c + 3] += a3;
    acc2[c] += b0;
    acc2[c + 1] += b1;
    acc2[c + 2] += b2;
    acc2[c + 3] += b3;
  }
  for (; c < width; c++) {
    let a = 0;
    let b = 0;
    for (let j = 0, row = vOffset + c; j < count; j++, row += rowStride) {
      const x = V[row];
      a += weights1[j] * x;
      b += weights2[j] * x;
    }
    acc1[c] += a;
    acc2[c] += b;
  }
}
