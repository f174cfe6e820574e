/**
 * Choosing the next token. The device does the heavy part (argmax, or softmax at a temperature);
 * only [B] ids or [B, V] probabilities come back, and top-k / top-p filtering and the seeded draw
 * run on the host, so a seed gives the same tokens on every backend.
 */
import { ArgumentError } from '../errors.js';
import { argmax, softmax } from '../ops/logits.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Random } from '../util/random.js';

export interface SamplingOptions {
  /** Always take the most likely token. The default when no temperature is given. */
  greedy?: boolean;
  /** Softmax temperature (> 0); lower is more conservative. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or absent: all). */
  topK?: number;
  /** Nucleus sampling: keep the smallest set of most likely tokens whose probability reaches p (1: all). */
  topP?: number;
}

export function validateSampling(options: SamplingOptions): void {
  if (
    options.greedy &&
    (options.temperature !== undefined || options.topK || (options.topP !== undefined && options.topP < 1))
  ) {
    throw new ArgumentError('sampling', 'greedy, or temperature/top-k/top-p, not both', JSON.stringify(options));
  }
  if (options.temperature !== undefined && !(options.temperature > 0 && Number.isFinite(options.temperature))) {
    throw new ArgumentError('temperature', 'a finite number > 0', options.temperature);
  }
  if (options.topK !== undefined && (!Number.isInteger(options.topK) || options.topK < 0)) {
    throw new ArgumentError('topK', 'an integer ≥ 0', options.topK);
  }
  if (options.topP !== undefined && !(options.topP > 0 && options.topP <= 1)) {
    throw new ArgumentError('topP', 'a number in (0, 1]', options.topP);
  }
}

export function isGreedy(options: SamplingOptions): boolean {
  return options.greedy === true || options.temperature === undefined;
}

/**
 * Next token per row of logits [B, V] (or [B, 1, V]). Greedy reads back B ids; sampling reads back
 * the probabilities and draws with `random`.
 */
export async function pickTokens(logits: Tensor, options: SamplingOptions, random: Random): Promise<number[]> {
  validateSampling(options);
  if (isGreedy(options)) {
    const ids = tidy(() => argmax(logits));
    try {
      return Array.from(await ids.data());
    } finally {
      ids.dispose();
    }
  }
  const probabilities = tidy(() => softmax(logits, options.temperature));
  let host: Float32Array;
  try {
    host = (await probabilities.data()) as Float32Array;
  } finally {
    probabilities.dispose();
  }
  const v = logits.shape[logits.rank - 1];
  const out: number[] = [];
  for (let row = 0; row < host.length / v; row++) {
    out.push(sampleFromProbabilities(host.subarray(row * v, (row + 1) * v), options, random));
  }
  return out;
}

/**
 * Draws one index from a probability row after top-k and top-p filtering. Candidates are ordered by
 * probability, ties by index, so the result depends only on the values and the generator.
 */
export function sampleFromProbabilities(
  probabilities: ArrayLike<number>,
  options: SamplingOptions,
  random: Random,
): number {
  const n = probabilities.length;
  let order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => probabilities[b] - probabilities[a] || a - b);
  if (options.topK && options.topK < n) order = order.slice(0, options.topK);
  if (options.topP !== undefined && options.topP < 1) {
    let total = 0;
    for (const i of order) total += probabilities[i];
    let cumulative = 0;
    let keep = 0;
    while (keep < order.length) {
      cumulative += probabilities[order[keep++]];
      if (cumulative >= options.topP * total) break;
    }
    order = order.slice(0, Math.max(1, keep));
  }
  let total = 0;
  for (const i of order) total += probabilities[i];
  let target = random.next() * total;
  for (const i of order) {
    target -= probabilities[i];
    if (target < 0) return i;
  }
  return order[order.length - 1];
}
