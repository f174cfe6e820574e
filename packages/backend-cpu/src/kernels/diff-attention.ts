/**
 * diffAttention: fused differential attention (DIFF Transformer, Ye et al. 2025, eq. 1)
 *   out_h = softmax(s·Q1_h·K1_gᵀ)·V_g − λ·softmax(s·Q2_h·K2_gᵀ)·V_g,   g = ⌊h·Hkv/H⌋
 * then, with `norm`, RMSNorm over the head's dv values × normWeight × outputScale.
 *
 * Both maps stream over the keys together with an online softmax (see ./online-softmax.ts), sharing
 * each block's value rows: per query row the scratch is two score blocks and two dv accumulators.
 *
 *   q      [B, T, 2H, dk]             map m of head h uses half-head 2h + m
 *   k      [B, S, 2Hkv, dk] (V1)      map m of group g uses half-head 2g + m
 *          [B, S, Hkv, dk]  (V2)      both maps use head g (shared keys)
 *   v      [B, S, Hkv, dv]
 *   lambda [H] or [B, T, H]
 * S is the storage length of k and v (a KV cache's capacity); only keys below keyLength are read.
 *
 * With `statistics` (diffAttentionWithStatistics) it also saves what the backward needs: each map's
 * log-sum-exp [B, T, H, 2] (scores rounded as the backward rounds them) and output [B, T, H, 2, dv].
 */
import type { DiffAttentionAttrs, OutputSpec, TensorView } from '@diff-transformer/core';
import { floats } from '../storage.js';
import {
  KEY_BLOCK,
  accumulateValuesTwice,
  exponentiate,
  roundScores,
  scaleInPlace,
  scoreBlock,
  visibleKeys,
} from './online-softmax.js';

export function diffAttention(
  q: TensorView,
  k: TensorView,
  v: TensorView,
  lambda: TensorView,
  normWeight: TensorView | null,
  attrs: DiffAttentionAttrs,
  _out: OutputSpec,
  y: Float32Array,
  statistics: { logSumExp: Float32Array; mapOutputs: Float32Array } | null = null,
): void {
  const Q = floats(q);
  const K = floats(k);
  const V = floats(v);
  const lambdas = floats(lambda);
  const weight = attrs.norm && normWeight ? floats(normWeight) : null;
  const [batch, tokens, halfHeads, dk] = q.shape;
  const numHeads = halfHeads / 2;
  const [, capacity, keyHeads] = k.shape;
  const [, , numKvHeads, dv] = v.shape;
  const sharedKeys = keyHeads === numKvHeads;
  const lambdaPerToken = lambda.shape.length === 3;
  const { scale, norm } = attrs;
  const keyStride = keyHeads * dk;
  const valueStride = numKvHeads * dv;

  const scores1 = new Float64Array(KEY_BLOCK);
  const scores2 = new Float64Array(KEY_BLOCK);
  const acc1 = new Float64Array(dv);
  const acc2 = new Float64Array(dv);

  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < numHeads; h++) {
      const g = Math.floor((h * numKvHeads) / numHeads);
      const key1 = (b * capacity * keyHeads + (sharedKeys ? g : 2 * g)) * dk;
      const key2 = sharedKeys ? key1 : key1 + dk;
      const value = (b * capacity * numKvHeads + g) * dv;
      for (let t = 0; t < tokens; t++) {
        const query1 = ((b * tokens + t) * halfHeads + 2 * h) * dk;
        const query2 = query1 + dk;
        const end = visibleKeys(t, attrs);
        let max1 = -Infinity;
        let max2 = -Infinity;
        let sum1 = 0;
        let sum2 = 0;
        acc1.fill(0);
        acc2.fill(0);
        for (let s0 = 0; s0 < end; s0 += KEY_BLOCK) {
          const count = Math.min(KEY_BLOCK, end - s0);
          let blockMax1 = scoreBlock(Q, query1, K, key1 + s0 * keyStride, keyStride, dk, count, scale, scores1);
          let blockMax2 = scoreBlock(Q, query2, K, key2 + s0 * keyStride, keyStride, dk, count, scale, scores2);
          if (statistics) {
            blockMax1 = roundScores(scores1, count);
            blockMax2 = roundScores(scores2, count);
          }
          if (blockMax1 > max1) {
            const factor = Math.exp(max1 - blockMax1);
            sum1 *= factor;
            scaleInPlace(acc1, dv, factor);
            max1 = blockMax1;
          }
          if (blockMax2 > max2) {
            const factor = Math.exp(max2 - blockMax2);
            sum2 *= factor;
            scaleInPlace(acc2, dv, factor);
            max2 = blockMax2;
          }
          sum1 += exponentiate(scores1, count, max1);
          sum2 += exponentiate(scores2, count, max2);
          // One pass over the block's value rows feeds both maps.
          accumulateValuesTwice(V, value + s0 * valueStride, valueStride, count, scores1, scores2, acc1, acc2, dv);
        }

        const row = (b * tokens + t) * numHeads + h;
        const lambdaValue = lambdaPerToken ? lambdas[row] : lambdas[h];
        const inverse1 = 1 / sum1;
        const weight2 = lambdaValue / sum2;
        const o = row * dv;
        if (statistics) {
          statistics.logSumExp[2 * row] = max1 + Math.log(sum1);
          statistics.logSumExp[2 * row + 1] = max2 + Math.log(sum2);
          const inverse2 = 1 / sum2;
          for (let c = 0; c < dv; c++) {
            statistics.mapOutputs[2 * o + c] = acc1[c] * inverse1;
            statistics.mapOutputs[2 * o + dv + c] = acc2[c] * inverse2;
          }
        }
        if (!norm) {
          for (let c = 0; c < dv; c++) y[o + c] = acc1[c] * inverse1 - acc2[c] * weight2;
          continue;
        }
        // The difference stays in doubles (in acc1) until the norm has been applied.
        let sumOfSquares = 0;
        for (let c = 0; c < dv; c++) {
          const d = acc1[c] * inverse1 - acc2[c] * weight2;
          acc1[c] = d;
          sumOfSquares += d * d;
        }
        const gain = norm.outputScale / Math.sqrt(sumOfSquares / dv + norm.eps);
        if (weight) for (let c = 0; c < dv; c++) y[o + c] = acc1[c] * gain * weight[c];
        else for (let c = 0; c < dv; c++) y[o + c] = acc1[c] * gain;
      }
    }
  }
}
