/**
 * Attention maps of a whole model, per layer and head, in float64: the probabilities that the fused
 * kernels never store. An explicitly slow path for figures and metrics on short contexts (every map is
 * a full T×T matrix per head and sequence); backends are not involved, so reading maps cannot slow them.
 *
 *   DIFF V1  map 1 = softmax(Q1·K1ᵀ/√d), map 2 = softmax(Q2·K2ᵀ/√d), differential = map 1 − λ·map 2,
 *            λ = exp(λq1·λk1) − exp(λq2·λk2) + λinit, one per layer (multihead_flashdiff_1.py)
 *   DIFF V2  the same with map 1 and map 2 from query heads 2i and 2i + 1 over shared keys, and
 *            λ = σ(x·W_λ) per token and head (multihead_flashdiffv2.py)
 *   baseline softmax(Q·Kᵀ/√d)
 *
 * The values are exactly those the reference model (./model.ts) computes its output from, so
 * Σ_s differential[t, s]·v[s] is that layer's attention before the per-head norm.
 */
import type { AttentionKind, HostTensor, ModelConfig } from '@diff-transformer/core';
import { type AttentionObservation, modelLogits, referenceLambdaInit } from './model.js';
import type { RefTensor } from './tensor.js';
import { refTensor, refZeros } from './tensor.js';

/** One head's maps; every map is [B, T, T]: row t is query t's weights over keys s (0 for s > t). */
export type HeadAttentionMaps =
  | {
      readonly kind: 'differential';
      readonly map1: RefTensor;
      readonly map2: RefTensor;
      /** [B, T]: the λ that scales map 2 in row t (one value throughout for DIFF V1). */
      readonly lambda: RefTensor;
      /** map1 − λ·map2, row by row. */
      readonly differential: RefTensor;
    }
  | {
      readonly kind: 'softmax';
      readonly map: RefTensor;
    };

export interface LayerAttentionMaps {
  /** Depth, from 0. */
  readonly layer: number;
  readonly attention: AttentionKind;
  /** DIFF V1: λinit and λ of the layer, shared by its heads. null otherwise (V2's λ is per token: see the heads). */
  readonly lambdaInit: number | null;
  readonly lambda: number | null;
  readonly heads: readonly HeadAttentionMaps[];
}

export interface AttentionMapsResult {
  /** Per layer, in order. */
  readonly layers: readonly LayerAttentionMaps[];
  /** The model's logits [B, T, V] for the same ids (the forward pass that produced the maps). */
  readonly logits: RefTensor;
}

/**
 * Runs the float64 reference model on token ids (every row equally long) and returns each layer's
 * attention maps per head. For a model's config and host parameters (`await model.hostParameters()`).
 */
export function attentionMaps(
  config: ModelConfig,
  parameters: ReadonlyMap<string, HostTensor>,
  ids: ReadonlyArray<readonly number[]>,
): AttentionMapsResult {
  const layers: LayerAttentionMaps[] = [];
  const logits = modelLogits(config, parameters, ids, {
    onAttention: (observation) => layers.push(layerMaps(config, observation)),
  });
  return { layers, logits };
}

function layerMaps(config: ModelConfig, { depth, maps, lambda }: AttentionObservation): LayerAttentionMaps {
  const [batch, heads, tokens, keys] = maps[0].shape;
  const head = (map: RefTensor, h: number): RefTensor => {
    const size = tokens * keys;
    const out = refZeros([batch, tokens, keys]);
    for (let b = 0; b < batch; b++) {
      const from = (b * heads + h) * size;
      out.data.set(map.data.subarray(from, from + size), b * size);
    }
    return out;
  };
  const perLayer = typeof lambda === 'number' ? lambda : null;
  const out: HeadAttentionMaps[] = [];
  for (let h = 0; h < heads; h++) {
    if (maps.length === 1) {
      out.push({ kind: 'softmax', map: head(maps[0], h) });
      continue;
    }
    const map1 = head(maps[0], h);
    const map2 = head(maps[1], h);
    // λ of row (b, t): the layer's λ (V1) or λ[b, t, h] (V2).
    const rowLambda = refZeros([batch, tokens]);
    for (let row = 0; row < batch * tokens; row++) {
      rowLambda.data[row] = perLayer ?? (lambda as RefTensor).data[row * heads + h];
    }
    const differential = refTensor(
      map1.data.map((p, i) => p - rowLambda.data[Math.floor(i / keys)] * map2.data[i]),
      map1.shape,
    );
    out.push({ kind: 'differential', map1, map2, lambda: rowLambda, differential });
  }
  return {
    layer: depth,
    attention: config.attention,
    lambdaInit: config.attention === 'differential' ? referenceLambdaInit(depth, config) : null,
    lambda: perLayer,
    heads: out,
  };
}
