/**
 * Packing and order. A split's token stream is cut into sequences of seqLen + 1 tokens that overlap by
 * one (inputs are tokens [i·T, i·T + T), targets the same shifted by one), so every token is a target
 * once per epoch. The training order is a seeded permutation of the sequences, drawn anew each epoch:
 * the k-th sequence of the run is a pure function of (seed, k), which makes a resumed run see exactly
 * the batches the uninterrupted run would.
 */
import { createRandom } from '@diff-transformer/core';

/**
 * Sequences by index: sequence i's ids and next-token targets (ignoreIndex −100 where nothing is to be
 * predicted), deterministic in i. PackedSequences is one; a synthetic task can be another.
 */
export interface SequenceSource {
  /** Sequences in one epoch. */
  readonly count: number;
  readonly seqLen: number;
  batch(indices: readonly number[]): { ids: number[][]; targets: number[][] };
}

export class PackedSequences implements SequenceSource {
  readonly tokens: Int32Array;
  readonly seqLen: number;
  /** Whole sequences in the stream (the tail shorter than seqLen + 1 is left out). */
  readonly count: number;

  constructor(tokens: Int32Array, seqLen: number) {
    this.tokens = tokens;
    this.seqLen = seqLen;
    this.count = Math.max(0, Math.floor((tokens.length - 1) / seqLen));
  }

  /** Inputs and next-token targets of sequence i. */
  sequence(i: number): { ids: number[]; targets: number[] } {
    const start = i * this.seqLen;
    return {
      ids: Array.from(this.tokens.subarray(start, start + this.seqLen)),
      targets: Array.from(this.tokens.subarray(start + 1, start + this.seqLen + 1)),
    };
  }

  /** A batch of sequences by index. */
  batch(indices: readonly number[]): { ids: number[][]; targets: number[][] } {
    const ids: number[][] = [];
    const targets: number[][] = [];
    for (const i of indices) {
      const s = this.sequence(i);
      ids.push(s.ids);
      targets.push(s.targets);
    }
    return { ids, targets };
  }
}

/** The seeded order of a run: sequence number k (0-based, over all epochs) → a sequence index. */
export class SequenceOrder {
  readonly count: number;
  readonly seed: number;
  #epoch = -1;
  #permutation: Uint32Array = new Uint32Array(0);

  constructor(count: number, seed: number) {
    this.count = count;
    this.seed = seed;
  }

  at(k: number): number {
    const epoch = Math.floor(k / this.count);
    if (epoch !== this.#epoch) {
      this.#permutation = permutation(this.count, this.seed, epoch);
      this.#epoch = epoch;
    }
    return this.#permutation[k - epoch * this.count];
  }
}

/** Fisher–Yates over 0…n−1 from a generator seeded by (seed, epoch). */
function permutation(n: number, seed: number, epoch: number): Uint32Array {
  const random = createRandom((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca77)) >>> 0);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}

/**
 * The fixed validation subset: `wanted` sequences spread evenly over the split (all of them when
 * wanted ≥ count), so a partial evaluation still sees every part of the validation text.
 */
export function evenlySpaced(count: number, wanted: number): number[] {
  if (wanted >= count) return Array.from({ length: count }, (_, i) => i);
  return Array.from({ length: wanted }, (_, i) => Math.floor((i * count) / wanted));
}
