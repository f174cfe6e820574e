import type { Tensor } from '../../tensor/tensor.js';
import type { RotaryTables } from '../rotary-tables.js';

/** The KV cache of one layer: keys and values of every position seen so far, preallocated. */
export interface LayerCache {
  readonly k: Tensor;
  readonly v: Tensor;
}

export interface AttentionContext {
  readonly rope: RotaryTables;
  /** Position of the first token of x (tokens already in the cache). */
  readonly positionOffset: number;
  /** Present when decoding: new keys/values are written into it and attention reads all of it. */
  readonly cache?: LayerCache;
}

/** One attention module of a block: x [B, T, E] → [B, T, E]. */
export interface AttentionModule {
  forward(x: Tensor, context: AttentionContext): Tensor;
  /** Shapes of this module's cache for a batch and a capacity (tokens). */
  cacheShapes(batch: number, capacity: number): { k: number[]; v: number[] };
  /** Frees what the module itself holds on the device (the parameters belong to its owner). */
  dispose?(): void;
}

/** Looks a parameter up by its name relative to the module. */
export type ParameterLookup = (name: string) => Tensor;
