/**
 * The KV cache: per layer, preallocated key and value tensors for `capacity` tokens of a batch. Each
 * forward with the cache writes its tokens' keys/values at `length` and attends to everything before.
 */
import type { Backend } from '../backend/kernels.js';
import { ArgumentError } from '../errors.js';
import { zeros } from '../tensor/create.js';
import { keep } from '../tensor/scope.js';
import type { LayerCache } from './attention/module.js';

export class KVCache {
  /** Tokens already in the cache (the position of the next token). */
  length = 0;
  readonly layers: readonly LayerCache[];
  #disposed = false;

  constructor(
    backend: Backend,
    readonly batch: number,
    readonly capacity: number,
    shapes: ReadonlyArray<{ k: number[]; v: number[] }>,
  ) {
    if (!Number.isInteger(batch) || batch < 1) throw new ArgumentError('KV cache batch', 'a positive integer', batch);
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new ArgumentError('KV cache capacity', 'a positive integer', capacity);
    const layers: LayerCache[] = [];
    try {
      for (const s of shapes) layers.push({ k: keep(zeros(s.k, { backend })), v: keep(zeros(s.v, { backend })) });
    } catch (error) {
      for (const l of layers) {
        l.k.dispose();
        l.v.dispose();
      }
      throw error;
    }
    this.layers = layers;
  }

  get remaining(): number {
    return this.capacity - this.length;
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  /** Forgets the cached tokens (the memory is kept and overwritten). */
  reset(): void {
    this.length = 0;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const l of this.layers) {
      l.k.dispose();
      l.v.dispose();
    }
  }
}
