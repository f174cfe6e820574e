/**
 * attentionBackward: the gradients of standard attention (FlashAttention-2's backward, Dao 2023), with
 * the same streaming structure as the forward: each query row visits its keys in blocks, recomputing
 * the block's probabilities from the scores and the row's saved log-sum-exp, so nothing of size T×S
 * exists. With D = dO · O (= rowsum(P ⊙ dP)) per row:
 *   dP_j = dO · v_j,   dS_j = P_j · (dP_j − D),   dq = scale · Σ_j dS_j · k_j,
 *   dk_j += scale · dS_j · q,   dv_j += P_j · dO
 * dk and dv are summed over every query row and every head of a GQA group, in doubles and in a fixed
 * order (batch, head, row, key), then rounded once: linear in the context, like the forward.
 */
import type {
  AttentionAttrs,
  AttentionGradientSpecs,
  AttentionStatisticsView,
  TensorView,
} from '@diff-transformer/core';
import { floats } from '../storage.js';
import { KEY_BLOCK, roundScores, scoreBlock, visibleKeys } from './online-softmax.js';

/** The operands of one map of one head: where its queries, keys and values sit, and their widths. */
export interface MapOperands {
  readonly Q: Float32Array;
  readonly K: Float32Array;
  readonly V: Float32Array;
  /** Offset of key 0's vector in K and of value row 0 in V; consecutive keys are a stride apart. */
  readonly key: number;
  readonly keyStride: number;
  readonly value: number;
  readonly valueStride: number;
  readonly dk: number;
  readonly dv: number;
  readonly scale: number;
}

/**
 * One query row's backward through one softmax map over its first `end` keys: adds the row's terms to
 * dK and dV (doubles, laid out as K and V) and its query gradient to dq (dk doubles). `scores` is
 * scratch of KEY_BLOCK doubles.
 */
export function rowBackward(
  map: MapOperands,
  query: number,
  end: number,
  logSumExp: number,
  dO: Float64Array,
  D: number,
  dq: Float64Array,
  dK: Float64Array,
  dV: Float64Array,
  scores: Float64Array,
): void {
  const { Q, K, V, keyStride, valueStride, dk, dv, scale } = map;
  for (let s0 = 0; s0 < end; s0 += KEY_BLOCK) {
    const count = Math.min(KEY_BLOCK, end - s0);
    scoreBlock(Q, query, K, map.key + s0 * keyStride, keyStride, dk, count, scale, scores);
    roundScores(scores, count);
    for (let j = 0; j < count; j++) {
      const p = Math.exp(scores[j] - logSumExp);
      const k = map.key + (s0 + j) * keyStride;
      const v = map.value + (s0 + j) * valueStride;
      let dP = 0;
      for (let c = 0; c < dv; c++) {
        dP += dO[c] * V[v + c];
        dV[v + c] += p * dO[c];
      }
      const dS = scale * p * (dP - D);
      for (let i = 0; i < dk; i++) {
        dq[i] += dS * K[k + i];
        dK[k + i] += dS * Q[query + i];
      }
    }
  }
}

export function attentionBackward(
  q: TensorView,
  k: TensorView,
  v: TensorView,
  output: TensorView,
  statistics: AttentionStatisticsView,
  dOut: TensorView,
  attrs: AttentionAttrs,
  _out: AttentionGradientSpecs,
  grads: { dq: Float32Array; dk: Float32Array; dv: Float32Array },
): void {
  const Q = floats(q);
  const O = floats(output);
  const dY = floats(dOut);
  const lse = floats(statistics.logSumExp);
  const [batch, tokens, numHeads, dk] = q.shape;
  const [, capacity, numKvHeads, dv] = v.shape;
  const dK = new Float64Array(grads.dk.length);
  const dV = new Float64Array(grads.dv.length);
  const dq = new Float64Array(dk);
  const dO = new Float64Array(dv);
  const scores = new Float64Array(KEY_BLOCK);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < numHeads; h++) {
      const g = Math.floor((h * numKvHeads) / numHeads);
      const map: MapOperands = {
        Q,
        K: floats(k),
        V: floats(v),
        key: (b * capacity * numKvHeads + g) * dk,
        keyStride: numKvHeads * dk,
        value: (b * capacity * numKvHeads + g) * dv,
        valueStride: numKvHeads * dv,
        dk,
        dv,
        scale: attrs.scale,
      };
      for (let t = 0; t < tokens; t++) {
        const row = (b * tokens + t) * numHeads + h;
        let D = 0;
        for (let c = 0; c < dv; c++) {
          dO[c] = dY[row * dv + c];
          D += dO[c] * O[row * dv + c];
        }
        dq.fill(0);
        rowBackward(map, row * dk, visibleKeys(t, attrs), lse[row], dO, D, dq, dK, dV, scores);
        grads.dq.set(dq, row * dk);
      }
    }
  }
  grads.dk.set(dK);
  grads.dv.set(dV);
}
