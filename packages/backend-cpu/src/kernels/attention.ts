/**
 * attention: standard scaled-dot-product attention of the baseline Transformer,
 *   out_h = softmax(s·Q_h·K_gᵀ)·V_g,   g = ⌊h·Hkv/H⌋ (GQA)
 * with q [B, T, H, dk], k [B, S, Hkv, dk], v [B, S, Hkv, dv] → [B, T, H, dv]. Keys stream through an
 * online softmax in blocks (see ./online-softmax.ts); only keys below keyLength are read.
 *
 * With `logSumExp` ([B, T, H], attentionWithStatistics) it also saves each row's ln Σ_s e^(score_s),
 * what the backward recomputes the probabilities from, with scores rounded as the backward rounds them.
 */
import type { AttentionAttrs, OutputSpec, TensorView } from '@diff-transformer/core';
import { floats } from '../storage.js';
import {
  KEY_BLOCK,
  accumulateValues,
  exponentiate,
  roundScores,
  scaleInPlace,
  scoreBlock,
  visibleKeys,
} from './online-softmax.js';

export function attention(
  q: TensorView,
  k: TensorView,
  v: TensorView,
  attrs: AttentionAttrs,
  _out: OutputSpec,
  y: Float32Array,
  logSumExp: Float32Array | null = null,
): void {
  const Q = floats(q);
  const K = floats(k);
  const V = floats(v);
  const [batch, tokens, numHeads, dk] = q.shape;
  const [, capacity, numKvHeads, dv] = v.shape;
  const keyStride = numKvHeads * dk;
  const valueStride = numKvHeads * dv;

  const scores = new Float64Array(KEY_BLOCK);
  const acc = new Float64Array(dv);

  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < numHeads; h++) {
      const g = Math.floor((h * numKvHeads) / numHeads);
      const key = (b * capacity * numKvHeads + g) * dk;
      const value = (b * capacity * numKvHeads + g) * dv;
      for (let t = 0; t < tokens; t++) {
        const query = ((b * tokens + t) * numHeads + h) * dk;
        const end = visibleKeys(t, attrs);
        let max = -Infinity;
        let sum = 0;
        acc.fill(0);
        for (let s0 = 0; s0 < end; s0 += KEY_BLOCK) {
          const count = Math.min(KEY_BLOCK, end - s0);
          let blockMax = scoreBlock(Q, query, K, key + s0 * keyStride, keyStride, dk, count, attrs.scale, scores);
          if (logSumExp) blockMax = roundScores(scores, count);
          if (blockMax > max) {
            const factor = Math.exp(max - blockMax);
            sum *= factor;
            scaleInPlace(acc, dv, factor);
            max = blockMax;
          }
          sum += exponentiate(scores, count, max);
          accumulateValues(V, value + s0 * valueStride, valueStride, count, scores, acc, dv);
        }
        const inverse = 1 / sum;
        const row = (b * tokens + t) * numHeads + h;
        if (logSumExp) logSumExp[row] = max + Math.log(sum);
        const o = row * dv;
        for (let c = 0; c < dv; c++) y[o + c] = acc[c] * inverse;
      }
    }
  }
}
