import type { AttentionAttrs, AttentionMaskAttrs, DiffAttentionAttrs } from '@diff-transformer/core';
import type { RefTensor } from './tensor.js';
import { refZeros } from './tensor.js';

/**
 * Scaled scores s·q·k of one query over the keys it may see (AttentionMaskAttrs): keys [0, keyLength),
 * and with `causal` only keys s ≤ keyOffset + t. `key(s)` is the offset of key s's row in `k`.
 */
function visibleScores(
  q: Float64Array,
  qOffset: number,
  k: Float64Array,
  key: (s: number) => number,
  width: number,
  t: number,
  mask: AttentionMaskAttrs,
): number[] {
  const visible = mask.causal ? Math.min(mask.keyLength, mask.keyOffset + t + 1) : mask.keyLength;
  const scores: number[] = [];
  for (let s = 0; s < visible; s++) {
    let dot = 0;
    for (let j = 0; j < width; j++) dot += q[qOffset + j] * k[key(s) + j];
    scores.push(mask.scale * dot);
  }
  return scores;
}

/**
 * Softmax weights of one query over the keys it may see: one weight per key in [0, keyLength); keys
 * it may not see get weight 0.
 */
function attentionWeights(
  q: Float64Array,
  qOffset: number,
  k: Float64Array,
  key: (s: number) => number,
  width: number,
  t: number,
  mask: AttentionMaskAttrs,
): number[] {
  const scores = visibleScores(q, qOffset, k, key, width, t, mask);
  const max = Math.max(...scores);
  const exps = scores.map((score) => Math.exp(score - max));
  const total = exps.reduce((sum, e) => sum + e, 0);
  const weights = new Array<number>(mask.keyLength).fill(0);
  exps.forEach((e, s) => {
    weights[s] = e / total;
  });
  return weights;
}

/** The key/value group of query head h with H query heads and Hkv groups (GQA): ⌊h·Hkv/H⌋. */
export function kvGroup(h: number, heads: number, kvHeads: number): number {
  return Math.floor((h * kvHeads) / heads);
}

/**
 * The softmax weights themselves: probabilities[b, h, t, s] of query t of head h over key s, as
 * `attention` uses them (keys a causal query may not see get 0). q [B, T, H, dk], k [B, S, Hkv, dk] →
 * [B, H, T, keyLength]. Full maps in float64: for figures and metrics on short contexts only.
 */
export function attentionProbabilities(q: RefTensor, k: RefTensor, attrs: AttentionMaskAttrs): RefTensor {
  const [batch, tokens, heads, dk] = q.shape;
  const [, keys, kvHeads] = k.shape;
  const out = refZeros([batch, heads, tokens, attrs.keyLength]);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const g = kvGroup(h, heads, kvHeads);
      const keyRow = (s: number) => ((b * keys + s) * kvHeads + g) * dk;
      for (let t = 0; t < tokens; t++) {
        const weights = attentionWeights(q.data, ((b * tokens + t) * heads + h) * dk, k.data, keyRow, dk, t, attrs);
        out.data.set(weights, ((b * heads + h) * tokens + t) * attrs.keyLength);
      }
    }
  }
  return out;
}

/**
 * The attention logits (pre-softmax activations): scores[b, h, t, s] = s·q·k of query t of head h over
 * key s, −∞ where the mask hides the key. q [B, T, H, dk], k [B, S, Hkv, dk] → [B, H, T, keyLength].
 * Full matrices in float64, for metrics on short contexts only (the paper's Table 5 outliers).
 */
export function attentionScores(q: RefTensor, k: RefTensor, attrs: AttentionMaskAttrs): RefTensor {
  const [batch, tokens, heads, dk] = q.shape;
  const [, keys, kvHeads] = k.shape;
  const out = refZeros([batch, heads, tokens, attrs.keyLength]);
  out.data.fill(Number.NEGATIVE_INFINITY);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const g = kvGroup(h, heads, kvHeads);
      const keyRow = (s: number) => ((b * keys + s) * kvHeads + g) * dk;
      for (let t = 0; t < tokens; t++) {
        const scores = visibleScores(q.data, ((b * tokens + t) * heads + h) * dk, k.data, keyRow, dk, t, attrs);
        out.data.set(scores, ((b * heads + h) * tokens + t) * attrs.keyLength);
      }
    }
  }
  return out;
}

/**
 * Standard attention: out_h = softmax(s·Q_h·K_gᵀ)·V_g with g = ⌊h·Hkv/H⌋.
 * q [B, T, H, dk], k [B, S, Hkv, dk], v [B, S, Hkv, dv] → [B, T, H, dv].
 */
export function attention(q: RefTensor, k: RefTensor, v: RefTensor, attrs: AttentionAttrs): RefTensor {
  const [batch, tokens, heads, dk] = q.shape;
  const [, keys, kvHeads, dv] = v.shape;
  const out = refZeros([batch, tokens, heads, dv]);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const g = kvGroup(h, heads, kvHeads);
      const keyRow = (s: number) => ((b * keys + s) * kvHeads + g) * dk;
      for (let t = 0; t < tokens; t++) {
        const weights = attentionWeights(q.data, ((b * tokens + t) * heads + h) * dk, k.data, keyRow, dk, t, attrs);
        const outBase = ((b * tokens + t) * heads + h) * dv;
        weights.forEach((w, s) => {
          const vBase = ((b * keys + s) * kvHeads + g) * dv;
          for (let j = 0; j < dv; j++) out.data[outBase + j] += w * v.data[vBase + j];
        });
      }
    }
  }
  return out;
}

/**
 * Differential attention exactly as DiffAttentionAttrs states it:
 *   out_h = (softmax(s·Q1_h·K1_gᵀ) − λ·softmax(s·Q2_h·K2_gᵀ))·V_g,   g = ⌊h·Hkv/H⌋
 * Q1_h, Q2_h are half-heads 2h and 2h+1 of q [B, T, 2H, dk]. With per-map keys k [B, S, 2Hkv, dk] the
 * maps of group g use half-heads 2g and 2g+1; with shared keys k [B, S, Hkv, dk] both use head g.
 * λ is lambda[h] (rank 1) or lambda[b, t, h] (rank 3). With `norm`, every output row becomes
 * RMSNorm(row; eps)·normWeight·outputScale.
 */
export function diffAttention(
  q: RefTensor,
  k: RefTensor,
  v: RefTensor,
  lambda: RefTensor,
  normWeight: RefTensor | null,
  attrs: DiffAttentionAttrs,
): RefTensor {
  const [batch, tokens, halfHeads, dk] = q.shape;
  const [, keys, kvHeads, dv] = v.shape;
  const heads = halfHeads / 2;
  const keyHeads = k.shape[2];
  const sharedKeys = keyHeads === kvHeads;
  const perToken = lambda.shape.length === 3;
  const out = refZeros([batch, tokens, heads, dv]);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const g = kvGroup(h, heads, kvHeads);
      const keyHead = (map: 0 | 1) => (sharedKeys ? g : 2 * g + map);
      const keyRow = (map: 0 | 1) => (s: number) => ((b * keys + s) * keyHeads + keyHead(map)) * dk;
      for (let t = 0; t < tokens; t++) {
        const qRow = (map: 0 | 1) => ((b * tokens + t) * halfHeads + 2 * h + map) * dk;
        const weights1 = attentionWeights(q.data, qRow(0), k.data, keyRow(0), dk, t, attrs);
        const weights2 = attentionWeights(q.data, qRow(1), k.data, keyRow(1), dk, t, attrs);
        const lam = perToken ? lambda.data[(b * tokens + t) * heads + h] : lambda.data[h];
        const row = new Float64Array(dv);
        for (let s = 0; s < attrs.keyLength; s++) {
          const w = weights1[s] - lam * weights2[s];
          const vBase = ((b * keys + s) * kvHeads + g) * dv;
          for (let j = 0; j < dv; j++) row[j] += w * v.data[vBase + j];
        }
        if (attrs.norm) {
          const meanSquare = row.reduce((sum, x) => sum + x * x, 0) / dv;
          const inverseRms = 1 / Math.sqrt(meanSquare + attrs.norm.eps);
          for (let j = 0; j < dv; j++)
            row[j] *= inverseRms * (normWeight ? normWeight.data[j] : 1) * attrs.norm.outputScale;
        }
        out.data.set(row, ((b * tokens + t) * heads + h) * dv);
      }
    }
  }
  return out;
}
