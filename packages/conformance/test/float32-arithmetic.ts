/**
 * The arithmetic the float32 double is made of (see float32-backend.ts): every product, sum, exp and
 * quotient rounded to float32, sums in order, attention streamed over the keys with an online softmax.
 */
import type { AttentionMaskAttrs, TensorView } from '@diff-transformer/core';

export const f = Math.fround;
export const data = (t: TensorView) => t.storage as Float32Array;
export const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Σ a[i]·b[i] over n terms, in order. */
export function dot(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, n: number): number {
  let sum = 0;
  for (let j = 0; j < n; j++) sum = f(sum + f(a[aOffset + j] * b[bOffset + j]));
  return sum;
}

export const sigmoid = (x: number) => f(1 / f(1 + f(Math.exp(-x))));

/** Keys [0, visible) of query t under a mask (the causal limit and keyLength). */
export const visibleKeys = (t: number, mask: AttentionMaskAttrs) =>
  mask.causal ? Math.min(mask.keyLength, mask.keyOffset + t + 1) : mask.keyLength;

/** Where one softmax map of one head reads its operands: query row t, key s and value s. */
export interface MapOperands {
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly key: (s: number) => number;
  readonly value: (s: number) => number;
  readonly dk: number;
  readonly dv: number;
  readonly scale: number;
}

/** One query's score against key s, as the forward computes it: scale · (q · k), rounded to float32. */
export const score = (map: MapOperands, query: number, s: number) =>
  f(map.scale * dot(map.q, query, map.k, map.key(s), map.dk));

/**
 * One query against keys [0, visible) with a streaming softmax: the normalised output and the
 * log-sum-exp max + ln l, in float32 (what a forward with statistics saves).
 */
export function streamKeys(
  map: MapOperands,
  query: number,
  visible: number,
): { output: Float32Array; logSumExp: number } {
  let max = -Infinity;
  let total = 0;
  const acc = new Float32Array(map.dv);
  for (let s = 0; s < visible; s++) {
    const x = score(map, query, s);
    const next = Math.max(max, x);
    const correction = f(Math.exp(f(max - next)));
    const p = f(Math.exp(f(x - next)));
    total = f(f(total * correction) + p);
    const vo = map.value(s);
    for (let j = 0; j < map.dv; j++) acc[j] = f(f(acc[j] * correction) + f(p * map.v[vo + j]));
    max = next;
  }
  for (let j = 0; j < map.dv; j++) acc[j] = f(acc[j] / total);
  return { output: acc, logSumExp: f(max + f(Math.log(total))) };
}

/** 1/√(mean(x²) + eps) of a row, summed in order. */
export function inverseRms(row: ArrayLike<number>, eps: number): number {
  let sum = 0;
  for (let j = 0; j < row.length; j++) sum = f(sum + f(row[j] * row[j]));
  return f(1 / f(Math.sqrt(f(f(sum / row.length) + f(eps)))));
}

/** RMSNorm of a row in place: x · ρ · w · scale. */
export function rmsNormRow(row: Float32Array, eps: number, weight: Float32Array | null, scale: number): void {
  const inverse = inverseRms(row, eps);
  for (let j = 0; j < row.length; j++) row[j] = f(f(f(row[j] * inverse) * (weight ? weight[j] : 1)) * f(scale));
}
