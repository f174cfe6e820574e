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

/** How a case draws its queries and keys (AttentionSpec.largeScores). */
export type LargeScores = 'one-hot' | 'tied';

/** Query or key values: N(0, 1), or the exactly representable grid of the large-logit cases. */
export function queryKeyValues(random: Random, n: number, largeScores: boolean): Float32Array {
  return largeScores ? quantized(random, n, 1 / 8, 2) : normal(random, n);
}

/**
 * Large scores whose top keys tie, for the backward. With scores of ±1e4 on the grid above, a row's
 * second key is e^−16 below its first, so dq and dk are made of e^−16-sized terms dP − D that no float32
 * log-sum-exp or row term D resolves (they cancel to round-off: NMSE 1e-1 on any float32 kernel). Here
 * keys come in pairs c ± TIE, with c on the grid in [−1, 1] and TIE = (1, −1, 1, −1, …), and queries
 * on the grid in [−2, 2] with equal neighbouring coordinates, so q·TIE = 0: both keys of a pair score
 * exactly the same for every query. A row's top score is then shared by two keys (p = ½ each, D their
 * mean): the gradients are of order scale·|dO·v|, and the log-sum-exp is max + ln 2, so a kernel must
 * get the sum right, not just the maximum. A row's dq is scale·((dS₁ − dS₂)·TIE + (dS₁ + dS₂)·c): the
 * first term carries it, the second is e^−16-sized again, kept small by |c| ≤ 1 < |TIE|.
 */
export function tiedQueries(random: Random, n: number): Float32Array {
  const values = quantized(random, n, 1 / 8, 2);
  for (let i = 1; i < n; i += 2) values[i] = values[i - 1];
  return values;
}

/** Keys [B, S, heads, d] in pairs c ± TIE whose scores tie for every query of tiedQueries (S and d even). */
export function tiedKeys(random: Random, shape: readonly number[]): Float32Array {
  const [batch, keys, heads, width] = shape;
  const values = quantized(random, batch * keys * heads * width, 1 / 8, 1);
  const row = heads * width;
  for (let b = 0; b < batch; b++) {
    for (let s = 0; s + 1 < keys; s += 2) {
      const base = (b * keys + s) * row;
      for (let j = 0; j < row; j++) {
        const tie = j % 2 === 0 ? 1 : -1;
        values[base + row + j] = values[base + j] - tie;
        values[base + j] += tie;
      }
    }
  }
  return values;
}

/** The queries of a case, by its kind of scores. */
export function queries(random: Random, n: number, largeScores: LargeScores | undefined): Float32Array {
  return largeScores === 'tied' ? tiedQueries(random, n) : queryKeyValues(random, n, largeScores === 'one-hot');
}

/** The keys [B, S, heads, d] of a case, by its kind of scores. */
export function keys(random: Random, shape: readonly number[], largeScores: LargeScores | undefined): Float32Array {
  const n = shape.reduce((a, b) => a * b);
  return largeScores === 'tied' ? tiedKeys(random, shape) : queryKeyValues(random, n, largeScores === 'one-hot');
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
