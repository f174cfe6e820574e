/**
 * What training needs of the attention kernels, in float64 with full T×S matrices: the statistics a
 * forward saves (each map's log-sum-exp and, for differential attention, each map's own output), and
 * the backward of both kernels, derived from the definitions:
 *
 *   P = softmax(S), S = scale·Q·Kᵀ (masked keys −∞)        map output O = P·V
 *   dV = Pᵀ·dO,   dP = dO·Vᵀ,   dS = P ⊙ (dP − rowsum(P ⊙ dP)),   dQ = scale·dS·K,   dK = scale·dSᵀ·Q
 *
 * Differential attention, per row: u = A − λ·B with A, B the two maps' outputs; with the fused norm
 * y = u·ρ·w·c, ρ = (mean(u²) + eps)^(−½), whose backward is rmsNorm's; then dA = du, dB = −λ·du,
 * dλ = −du·B. Written independently of every backend; checked by finite differences in the tests.
 */
import type { AttentionMaskAttrs, DiffAttentionAttrs } from '@diff-transformer/core';
import { kvGroup } from './attention.js';
import type { RefTensor } from './tensor.js';
import { refZeros } from './tensor.js';

/** One map of one head of one batch entry: its rows and keys, as views into q and k. */
interface MapOperands {
  /** Offset of query row t's vector in q. */
  readonly query: (t: number) => number;
  /** Offset of key s's vector in k. */
  readonly key: (s: number) => number;
  /** Offset of key s's value row in v. */
  readonly value: (s: number) => number;
}

/** Scores and probabilities [T][S] of one map (0 where a key is hidden), with each row's log-sum-exp. */
function probabilities(
  q: RefTensor,
  k: RefTensor,
  operands: MapOperands,
  width: number,
  tokens: number,
  mask: AttentionMaskAttrs,
): { p: Float64Array[]; logSumExp: Float64Array } {
  const p: Float64Array[] = [];
  const logSumExp = new Float64Array(tokens);
  for (let t = 0; t < tokens; t++) {
    const visible = mask.causal ? Math.min(mask.keyLength, mask.keyOffset + t + 1) : mask.keyLength;
    const scores = new Float64Array(visible);
    for (let s = 0; s < visible; s++) {
      let dot = 0;
      for (let j = 0; j < width; j++) dot += q.data[operands.query(t) + j] * k.data[operands.key(s) + j];
      scores[s] = mask.scale * dot;
    }
    const max = Math.max(...scores);
    let total = 0;
    for (const score of scores) total += Math.exp(score - max);
    logSumExp[t] = max + Math.log(total);
    const row = new Float64Array(mask.keyLength);
    for (let s = 0; s < visible; s++) row[s] = Math.exp(scores[s] - logSumExp[t]);
    p.push(row);
  }
  return { p, logSumExp };
}

/** O = P·V for one map: rows [T][dv]. */
function mapOutput(p: Float64Array[], v: RefTensor, operands: MapOperands, dv: number): Float64Array[] {
  return p.map((row) => {
    const out = new Float64Array(dv);
    row.forEach((weight, s) => {
      for (let c = 0; c < dv; c++) out[c] += weight * v.data[operands.value(s) + c];
    });
    return out;
  });
}

/**
 * Accumulates one map's backward for output gradients dO [T][dv] into dq, dk, dv (views as in operands).
 */
function mapBackward(
  p: Float64Array[],
  dO: Float64Array[],
  tensors: { q: RefTensor; k: RefTensor; v: RefTensor },
  grads: { dq: RefTensor; dk: RefTensor; dv: RefTensor },
  operands: MapOperands,
  dk: number,
  dv: number,
  scale: number,
): void {
  p.forEach((row, t) => {
    const dP = row.map((_, s) => {
      let dot = 0;
      for (let c = 0; c < dv; c++) dot += dO[t][c] * tensors.v.data[operands.value(s) + c];
      return dot;
    });
    let rowDot = 0;
    for (let s = 0; s < row.length; s++) rowDot += row[s] * dP[s];
    row.forEach((weight, s) => {
      for (let c = 0; c < dv; c++) grads.dv.data[operands.value(s) + c] += weight * dO[t][c];
      const dS = weight * (dP[s] - rowDot);
      for (let j = 0; j < dk; j++) {
        grads.dq.data[operands.query(t) + j] += scale * dS * tensors.k.data[operands.key(s) + j];
        grads.dk.data[operands.key(s) + j] += scale * dS * tensors.q.data[operands.query(t) + j];
      }
    });
  });
}

/** Standard attention with its log-sum-exp [B, T, H, 1]. */
export function attentionWithStatistics(
  q: RefTensor,
  k: RefTensor,
  v: RefTensor,
  attrs: AttentionMaskAttrs,
): { output: RefTensor; logSumExp: RefTensor } {
  const [batch, tokens, heads, dk] = q.shape;
  const [, keys, kvHeads, dv] = v.shape;
  const output = refZeros([batch, tokens, heads, dv]);
  const logSumExp = refZeros([batch, tokens, heads, 1]);
  forEachHead(batch, heads, kvHeads, (b, h, g) => {
    const operands = standardOperands(b, h, g, { tokens, keys, heads, kvHeads, dk, dv });
    const { p, logSumExp: lse } = probabilities(q, k, operands, dk, tokens, attrs);
    mapOutput(p, v, operands, dv).forEach((row, t) => {
      output.data.set(row, ((b * tokens + t) * heads + h) * dv);
      logSumExp.data[(b * tokens + t) * heads + h] = lse[t];
    });
  });
  return { output, logSumExp };
}

/** The gradients of standard attention for dOut [B, T, H, dv]. */
export function attentionBackward(
  q: RefTensor,
  k: RefTensor,
  v: RefTensor,
  dOut: RefTensor,
  attrs: AttentionMaskAttrs,
): { dq: RefTensor; dk: RefTensor; dv: RefTensor } {
  const [batch, tokens, heads, dk] = q.shape;
  const [, keys, kvHeads, dv] = v.shape;
  const grads = { dq: refZeros(q.shape), dk: refZeros(k.shape), dv: refZeros(v.shape) };
  forEachHead(batch, heads, kvHeads, (b, h, g) => {
    const operands = standardOperands(b, h, g, { tokens, keys, heads, kvHeads, dk, dv });
    const { p } = probabilities(q, k, operands, dk, tokens, attrs);
    const dO = rows(dOut, (t) => ((b * tokens + t) * heads + h) * dv, tokens, dv);
    mapBackward(p, dO, { q, k, v }, grads, operands, dk, dv, attrs.scale);
  });
  return grads;
}

/** Differential attention with its statistics: log-sum-exp [B, T, H, 2] and map outputs [B, T, H, 2, dv]. */
export function diffAttentionWithStatistics(
  q: RefTensor,
  k: RefTensor,
  v: RefTensor,
  lambda: RefTensor,
  normWeight: RefTensor | null,
  attrs: DiffAttentionAttrs,
): { output: RefTensor; logSumExp: RefTensor; mapOutputs: RefTensor } {
  const [batch, tokens, halfHeads, dk] = q.shape;
  const [, , kvHeads, dv] = v.shape;
  const heads = halfHeads / 2;
  const output = refZeros([batch, tokens, heads, dv]);
  const logSumExp = refZeros([batch, tokens, heads, 2]);
  const mapOutputs = refZeros([batch, tokens, heads, 2, dv]);
  forEachHead(batch, heads, kvHeads, (b, h, g) => {
    const maps = ([0, 1] as const).map((m) => {
      const operands = differentialOperands(q, k, v, b, h, g, m);
      const { p, logSumExp: lse } = probabilities(q, k, operands, dk, tokens, attrs);
      return { lse, out: mapOutput(p, v, operands, dv) };
    });
    for (let t = 0; t < tokens; t++) {
      const row = (b * tokens + t) * heads + h;
      const lam = lambda.shape.length === 3 ? lambda.data[row] : lambda.data[h];
      maps.forEach((map, m) => {
        logSumExp.data[row * 2 + m] = map.lse[t];
        mapOutputs.data.set(map.out[t], (row * 2 + m) * dv);
      });
      const u = maps[0].out[t].map((a, c) => a - lam * maps[1].out[t][c]);
      output.data.set(attrs.norm ? normalise(u, normWeight, attrs.norm) : u, row * dv);
    }
  });
  return { output, logSumExp, mapOutputs };
}

/** The gradients of differential attention for dOut [B, T, H, dv] (see the file comment). */
export function diffAttentionBackward(
  q: RefTensor,
  k: RefTensor,
  v: RefTensor,
  lambda: RefTensor,
  normWeight: RefTensor | null,
  dOut: RefTensor,
  attrs: DiffAttentionAttrs,
): { dq: RefTensor; dk: RefTensor; dv: RefTensor; dLambda: RefTensor; dNormWeight: RefTensor | null } {
  const [batch, tokens, halfHeads, dk] = q.shape;
  const [, , kvHeads, dv] = v.shape;
  const heads = halfHeads / 2;
  const grads = { dq: refZeros(q.shape), dk: refZeros(k.shape), dv: refZeros(v.shape) };
  const dLambda = refZeros(lambda.shape);
  const dNormWeight = attrs.norm && normWeight ? refZeros(normWeight.shape) : null;
  forEachHead(batch, heads, kvHeads, (b, h, g) => {
    const maps = ([0, 1] as const).map((m) => {
      const operands = differentialOperands(q, k, v, b, h, g, m);
      const { p } = probabilities(q, k, operands, dk, tokens, attrs);
      return { operands, p, out: mapOutput(p, v, operands, dv) };
    });
    const dA: Float64Array[] = [];
    const dB: Float64Array[] = [];
    for (let t = 0; t < tokens; t++) {
      const row = (b * tokens + t) * heads + h;
      const perToken = lambda.shape.length === 3;
      const lam = perToken ? lambda.data[row] : lambda.data[h];
      const a = maps[0].out[t];
      const bRow = maps[1].out[t];
      const u = a.map((x, c) => x - lam * bRow[c]);
      const dy = dOut.data.subarray(row * dv, (row + 1) * dv);
      let du: Float64Array;
      if (attrs.norm) {
        const n = normBackward(u, normWeight, attrs.norm, dy);
        du = n.du;
        if (dNormWeight) for (let c = 0; c < dv; c++) dNormWeight.data[c] += n.dWeight[c];
      } else {
        du = Float64Array.from(dy);
      }
      let dLam = 0;
      for (let c = 0; c < dv; c++) dLam -= du[c] * bRow[c];
      dLambda.data[perToken ? row : h] += dLam;
      dA.push(du);
      dB.push(du.map((x) => -lam * x));
    }
    mapBackward(maps[0].p, dA, { q, k, v }, grads, maps[0].operands, dk, dv, attrs.scale);
    mapBackward(maps[1].p, dB, { q, k, v }, grads, maps[1].operands, dk, dv, attrs.scale);
  });
  return { ...grads, dLambda, dNormWeight };
}

/** The fused per-head norm of one row: u·ρ·w·outputScale. */
function normalise(
  u: Float64Array,
  weight: RefTensor | null,
  norm: NonNullable<DiffAttentionAttrs['norm']>,
): Float64Array {
  const rho = (u.reduce((sum, x) => sum + x * x, 0) / u.length + norm.eps) ** -0.5;
  return u.map((x, c) => x * rho * (weight ? weight.data[c] : 1) * norm.outputScale);
}

/** rmsNorm's backward for one row, with the output scale folded into the weight. */
function normBackward(
  u: Float64Array,
  weight: RefTensor | null,
  norm: NonNullable<DiffAttentionAttrs['norm']>,
  dy: ArrayLike<number>,
): { du: Float64Array; dWeight: Float64Array } {
  const width = u.length;
  const rho = (u.reduce((sum, x) => sum + x * x, 0) / width + norm.eps) ** -0.5;
  const w = (c: number) => (weight ? weight.data[c] : 1) * norm.outputScale;
  let projection = 0;
  for (let c = 0; c < width; c++) projection += dy[c] * w(c) * u[c];
  const du = u.map((x, c) => rho * w(c) * dy[c] - (rho ** 3 / width) * x * projection);
  const dWeight = u.map((x, c) => dy[c] * x * rho * norm.outputScale);
  return { du, dWeight };
}

function forEachHead(
  batch: number,
  heads: number,
  kvHeads: number,
  body: (b: number, h: number, g: number) => void,
): void {
  for (let b = 0; b < batch; b++) for (let h = 0; h < heads; h++) body(b, h, kvGroup(h, heads, kvHeads));
}

function standardOperands(
  b: number,
  h: number,
  g: number,
  dims: { tokens: number; keys: number; heads: number; kvHeads: number; dk: number; dv: number },
): MapOperands {
  const { tokens, keys, heads, kvHeads, dk, dv } = dims;
  return {
    query: (t) => ((b * tokens + t) * heads + h) * dk,
    key: (s) => ((b * keys + s) * kvHeads + g) * dk,
    value: (s) => ((b * keys + s) * kvHeads + g) * dv,
  };
}

/** Map m of head h: half-head 2h + m of q; half-head 2g + m of per-map keys, or head g of shared keys. */
function differentialOperands(
  q: RefTensor,
  k: RefTensor,
  v: RefTensor,
  b: number,
  h: number,
  g: number,
  m: 0 | 1,
): MapOperands {
  const [, tokens, halfHeads, dk] = q.shape;
  const [, keys, kvHeads, dv] = v.shape;
  const keyHeads = k.shape[2];
  const keyHead = keyHeads === kvHeads ? g : 2 * g + m;
  return {
    query: (t) => ((b * tokens + t) * halfHeads + 2 * h + m) * dk,
    key: (s) => ((b * keys + s) * keyHeads + keyHead) * dk,
    value: (s) => ((b * keys + s) * kvHeads + g) * dv,
  };
}

/** Rows [T][width] of x starting at offset(t). */
function rows(x: RefTensor, offset: (t: number) => number, tokens: number, width: number): Float64Array[] {
  return Array.from({ length: tokens }, (_, t) => x.data.slice(offset(t), offset(t) + width));
}
