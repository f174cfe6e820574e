/**
 * The KV cache: per layer, key and value tensors [B, capacity, …] of a batch. Each forward with the
 * cache writes its tokens' keys/values at `length` and attends to everything before. The capacity
 * grows on demand (doubling, up to `maxCapacity`), copying on the device with cacheWrite, so a long
 * generation holds memory for the tokens it has made, not for the most it might make.
 */
import type { Backend } from '../backend/kernels.js';
import { ArgumentError } from '../errors.js';
import { cacheWrite } from '../ops/memory.js';
import { zeros } from '../tensor/create.js';
import { keep } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { LayerCache } from './attention/module.js';

export interface KVCacheOptions {
  /** The most tokens the cache may grow to; default: no limit but the device's memory. */
  readonly maxCapacity?: number;
}

export class KVCache {
  /** Tokens already in the cache (the position of the next token). */
  length = 0;
  /** The most tokens it may hold (Infinity: no limit but memory). */
  readonly maxCapacity: number;
  readonly #layers: Array<{ k: Tensor; v: Tensor }>;
  #capacity: number;
  #disposed = false;

  /** `capacity` tokens are allocated now; `shapes` are each layer's [B, capacity, …] key and value shapes. */
  constructor(
    readonly backend: Backend,
    readonly batch: number,
    capacity: number,
    shapes: ReadonlyArray<{ k: number[]; v: number[] }>,
    options: KVCacheOptions = {},
  ) {
    if (!Number.isInteger(batch) || batch < 1) throw new ArgumentError('KV cache batch', 'a positive integer', batch);
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new ArgumentError('KV cache capacity', 'a positive integer', capacity);
    const maxCapacity = options.maxCapacity ?? Infinity;
    if (maxCapacity !== Infinity && !(Number.isInteger(maxCapacity) && maxCapacity >= capacity))
      throw new ArgumentError(
        'KV cache maxCapacity',
        `an integer ≥ its capacity (${capacity}), or Infinity`,
        maxCapacity,
      );
    this.maxCapacity = maxCapacity;
    const layers: Array<{ k: Tensor; v: Tensor }> = [];
    try {
      for (const s of shapes) layers.push({ k: keep(zeros(s.k, { backend })), v: keep(zeros(s.v, { backend })) });
    } catch (error) {
      for (const l of layers) {
        l.k.dispose();
        l.v.dispose();
      }
      throw error;
    }
    this.#layers = layers;
    this.#capacity = capacity;
  }

  /** Each layer's keys and values; the tensors are replaced when the cache grows. */
  get layers(): readonly LayerCache[] {
    return this.#layers;
  }

  /** Tokens it holds room for now. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Tokens that can still be added (up to maxCapacity). */
  get remaining(): number {
    return this.maxCapacity - this.length;
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  /**
   * Makes room for `tokens` tokens in all: grows to the larger of `tokens` and twice the capacity (at
   * most maxCapacity), copying what the cache holds. A forward with the cache calls it.
   */
  reserve(tokens: number): void {
    if (this.#disposed) throw new ArgumentError('KV cache', 'a live KV cache', 'a disposed one');
    if (tokens <= this.#capacity) return;
    if (!Number.isInteger(tokens) || tokens > this.maxCapacity)
      throw new ArgumentError('KV cache tokens', `an integer ≤ ${this.maxCapacity} (its maxCapacity)`, tokens);
    const capacity = Math.min(this.maxCapacity, Math.max(tokens, 2 * this.#capacity));
    // One layer at a time, so the peak is the cache plus one layer's new tensors.
    for (const layer of this.#layers) {
      layer.k = this.#grown(layer.k, capacity);
      layer.v = this.#grown(layer.v, capacity);
    }
    this.#capacity = capacity;
  }

  /** Forgets the cached tokens (the memory is kept and overwritten). */
  reset(): void {
    this.length = 0;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const l of this.#layers) {
      l.k.dispose();
      l.v.dispose();
    }
  }

  /** A [B, capacity, …] copy of `old` (its rows first, zeros after); frees `old`. */
  #grown(old: Tensor, capacity: number): Tensor {
    // A layer already grown by an attempt that ran out of memory further on is kept as it is.
    if (old.shape[1] >= capacity) return old;
    const shape = [...old.shape];
    shape[1] = capacity;
    const grown = keep(zeros(shape, { backend: this.backend }));
    try {
      cacheWrite(grown, old, 0);
    } catch (error) {
      grown.dispose();
      throw error;
    }
    old.dispose();
    return grown;
  }
}
