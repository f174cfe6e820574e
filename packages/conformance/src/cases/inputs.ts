/**
 * Deterministic test inputs, drawn from core's seeded generator so every backend sees the same values.
 */
import type { Random } from '@diff-transformer/core';

/** n values from N(0, std²). */
export function normal(random: Random, n: number, std = 1): Float32Array {
  return Float32Array.from({ length: n }, () => std * random.normal());
}

/** n values uniform in [low, high). */
export function uniform(random: Random, n: number, low: number, high: number): Float32Array {
  return Float32Array.from({ length: n }, () => low + (high - low) * random.next());
}

/**
 * n multiples of `step` in [−maxAbs, maxAbs]. With step and maxAbs powers of two, dot products of a few
 * such vectors are exact in float32; the large-logit cases use them so that scores of ±1e4 have no
 * round-off, and any difference from the reference comes from the kernel, not from the inputs.
 */
export function quantized(random: Random, n: number, step: number, maxAbs: number): Float32Array {
  const levels = Math.round(maxAbs / step);
  return Float32Array.from({ length: n }, () => step * (Math.floor(random.next() * (2 * levels + 1)) - levels));
}

/** n integers in [0, bound). */
export function integers(random: Random, n: number, bound: number): number[] {
  return Array.from({ length: n }, () => Math.floor(random.next() * bound));
}

/** A stable 32-bit seed from a case name (FNV-1a), so a case's inputs do not depend on its position. */
export function seedOf(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
