/** Inputs shared by the attention and diffAttention cases. */
import type { Random } from '@diff-transformer/core';
import { normal, quantized } from './inputs.js';

/**
 * Scale of the large-logit cases. q and k hold multiples of 1/8 in [−2, 2], so q·k over 16 dimensions is
 * an exact multiple of 1/64 and scale·q·k an exact multiple of 16 that reaches ±1e4: e^score overflows
 * float32 (and float64) unless the row maximum is subtracted, while the correct result carries no
 * round-off from the inputs. Gaps of ≥ 16 between scores make the softmax close to one-hot, so the
 * result does not hinge on the last bits of an exp.
 */
export const LARGE_SCORE_SCALE = 1024;

/** Query or key values: N(0, 1), or the exactly representable grid of the large-logit cases. */
export function queryKeyValues(random: Random, n: number, largeScores: boolean): Float32Array {
  return largeScores ? quantized(random, n, 1 / 8, 2) : normal(random, n);
}

/**
 * Keys or values [B, S, heads, width] whose rows at positions ≥ keyLength are a stale cache: 100 times
 * larger than the valid rows, so a kernel that reads past keyLength is far off.
 */
export function withStaleRows(values: Float32Array, shape: readonly number[], keyLength: number): Float32Array {
  const [batch, keys, heads, width] = shape;
  const row = heads * width;
  for (let b = 0; b < batch; b++) {
    for (let s = keyLength; s < keys; s++) {
      for (let j = 0; j < row; j++) values[(b * keys + s) * row + j] *= 100;
    }
  }
  return values;
}
