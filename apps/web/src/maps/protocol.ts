/**
 * Messages to the maps worker, which computes attention maps with the float64 reference
 * (attentionMaps of @diff-transformer/reference): the explicitly slow path that keeps the
 * fused kernels free of any map. Parameters come once per model version, read back from the device.
 */
import type { HostParameters, Slot } from '../engine/protocol.js';

/** One head's maps for one sequence, each [T, T] row-major (row t: query t over keys s). */
export type HeadMaps =
  | {
      readonly kind: 'differential';
      readonly map1: Float64Array;
      readonly map2: Float64Array;
      /** λ of each row (the same throughout for DIFF V1). */
      readonly lambda: Float64Array;
      readonly differential: Float64Array;
    }
  | { readonly kind: 'softmax'; readonly map: Float64Array };

export interface LayerMaps {
  readonly layer: number;
  readonly lambda: number | null;
  readonly lambdaInit: number | null;
  readonly heads: readonly HeadMaps[];
}

export interface ModelMaps {
  readonly slot: Slot;
  readonly version: number;
  readonly attention: string;
  readonly tokens: number;
  readonly layers: readonly LayerMaps[];
}

export type MapsRequest =
  | { readonly id: number; readonly type: 'parameters'; readonly slot: Slot; readonly parameters: HostParameters }
  | {
      readonly id: number;
      readonly type: 'maps';
      readonly slot: Slot;
      readonly version: number;
      readonly ids: number[];
    };

export type MapsResponse =
  | { readonly id: number; readonly type: 'result'; readonly result: ModelMaps | null }
  | { readonly id: number; readonly type: 'error'; readonly message: string };
