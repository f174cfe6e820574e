/**
 * The backward of both attention kernels (FlashAttention-2, Dao 2023): probabilities are recomputed
 * tile by tile from q, k and the log-sum-exp the forward saved, P = e^(scale·q·k − lse), so nothing of
 * size T×S exists. WGSL has no float atomics, so the gradients come from two passes that each own
 * what they write (and sum in a fixed order: the same bits on every run):
 *
 *   ROW        one workgroup per (b, t, h) row: the row terms of every map. Standard attention:
 *              D = rowsum(dOut ⊙ output). Differential attention, from the saved map outputs A, B:
 *              u = A − λ·B, the fused norm's backward → dU, then D₁ = dU·A, D₂ = dU·B and
 *              dλ_row = −dU·B; with a norm weight also n·outputScale for dNormWeight.
 *   KEY-MAJOR  one workgroup per (b, kv group g, block of BKV keys): for every head of the group and
 *              every tile of BQ queries that sees the block (causal: the tiles before the block's
 *              first visible query are skipped), recompute S_m, P_m and dP = dU·Vᵀ, then
 *              dS_m = c_m·P_m ⊙ (dP − D_m) and accumulate, in registers,
 *                dV  += (Σ_m c_m·P_m)ᵀ · dU          dK_m += dS_mᵀ · Q_m      (× scale at the end)
 *              with c₁ = 1, c₂ = −λ (dO₂ = −λ·dU, so one dP serves both maps, and D_m is taken
 *              before the factor c_m); standard attention is one map with c = 1 and dU = dOut. Q and
 *              dU tiles are staged in workgroup memory.
 *   QUERY-MAJOR one workgroup per (b, h, block of BQ queries): the same recomputation over the key
 *              tiles the block sees, staged like the forward's, accumulating dQ_m += dS_m · K_m.
 *
 * The row terms travel in one buffer, four floats per row and map: (lse_m, D_m, c_m, extra), extra of
 * map 1 being dλ_row; so no pass binds more than 8 storage buffers (WebGPU's default limit).
 * Scores are computed in the forward's order (fma over d, then × scale), so the recomputed
 * probabilities are the forward's; D_m is summed in the order of dP (fma over the columns from 0), so
 * where a map is one-hot (its output is exactly one value row) dP − D is exactly 0 there, as it is.
 */
import type { Program } from '../device/pipelines.js';
import { FLAT_BUILTINS, FLAT_WORKGROUP } from './common.js';

export const BACKWARD_THREADS = 128;
export const ROW_PASS_THREADS = 64;
/** Floats of row terms per (row, map). */
export const TERMS_PER_MAP = 4;
/** Register accumulators per thread that the key-major pass may hold (dV and dK columns together). */
export const MAX_ACCUMULATORS = 64;

export interface BackwardShape {
  /** 2: differential attention; 1: standard attention. */
  readonly maps: 1 | 2;
  /** 2: per-map keys (DIFF V1); 1: shared keys (V2, standard). */
  readonly keyMaps: 1 | 2;
  readonly dk: number;
  readonly dv: number;
}

/** Uniform block of the key-major and query-major passes. */
const PARAMS = /* wgsl */ `
struct Params {
  tokens: u32, heads: u32, kvHeads: u32, keyHeads: u32,
  capacity: u32, keyOffset: u32, keyLength: u32, causal: u32,
  batch: u32, blocks: u32, scale: f32,
}
@group(0) @binding(0) var<uniform> p: Params;`;

function shapeKey({ maps, keyMaps, dk, dv }: BackwardShape): string {
  return `${maps === 2 ? 'diff' : 'standard'}/${keyMaps === 2 ? 'per-map' : 'shared'}/dk${dk}/dv${dv}`;
}

/** Index helpers shared by both passes (q [B, T, maps·H, dk], k [B, S, keyHeads, dk], v [B, S, Hkv, dv]). */
function indexing(shape: BackwardShape): string {
  const { maps, keyMaps, dk, dv } = shape;
  return /* wgsl */ `
fn visibleEnd(t: u32) -> u32 {
  if (p.causal != 0u) { return min(p.keyLength, p.keyOffset + t + 1u); }
  return p.keyLength;
}
fn rowOf(b: u32, t: u32, h: u32) -> u32 { return (b * p.tokens + t) * p.heads + h; }
fn queryAt(b: u32, t: u32, h: u32, m: u32) -> u32 {
  return ((b * p.tokens + t) * p.heads * ${maps}u + ${maps}u * h + m) * ${dk}u;
}
fn keyAt(b: u32, s: u32, g: u32, km: u32) -> u32 {
  return ((b * p.capacity + s) * p.keyHeads + ${keyMaps === 2 ? '2u * g + km' : 'g'}) * ${dk}u;
}
fn valueAt(b: u32, s: u32, g: u32) -> u32 { return ((b * p.capacity + s) * p.kvHeads + g) * ${dv}u; }`;
}

/**
 * The probabilities of a tile from its raw scores, and dS in their place: Ss holds maps × (BQ·BK) raw
 * scores, Ps the tile's dP = dU·Vᵀ, Ts the rows' terms. With `weights`, Ps is replaced by Σ_m c_m·P_m
 * (what dV needs).
 */
function transform(maps: number, bq: number, bk: number, weights: boolean, t0: string, s0: string): string {
  const tile = bq * bk;
  const perMap = [...Array(maps).keys()]
    .map(
      (m) => `
      {
        let terms = ${m * TERMS_PER_MAP}u + i * ${maps * TERMS_PER_MAP}u;
        var probability = 0.0;
        if (visible) { probability = exp(Ss[${m * tile}u + e] * p.scale - Ts[terms]); }
        Ss[${m * tile}u + e] = probability * Ts[terms + 2u] * (dp - Ts[terms + 1u]);
        ${weights ? 'weight = fma(Ts[terms + 2u], probability, weight);' : ''}
      }`,
    )
    .join('');
  return /* wgsl */ `
    for (var e = lid; e < ${tile}u; e += ${BACKWARD_THREADS}u) {
      let i = e / ${bk}u;
      let t = ${t0} + i;
      let s = ${s0} + e % ${bk}u;
      let visible = t < p.tokens && s < visibleEnd(t);
      let dp = Ps[e];
      ${weights ? 'var weight = 0.0;' : ''}${perMap}
      ${weights ? 'Ps[e] = weight;' : ''}
    }`;
}

/** The key-major pass's tile: BKV keys per workgroup, BQ queries per staged tile. */
export interface KeyValueTile {
  readonly bkv: number;
  readonly bq: number;
}

/** Workgroup memory of the key-major pass, in floats (must match the declarations below). */
export function keyValueWorkgroupFloats(shape: BackwardShape, tile: KeyValueTile): number {
  const { maps, dk, dv } = shape;
  const { bkv, bq } = tile;
  return maps * bq * dk + bq * dv + (maps + 1) * bq * bkv + maps * bq * TERMS_PER_MAP;
}

/** dK and dV: one workgroup per (b, kv group, block of BKV keys); see the file comment. */
export function keyValueProgram(shape: BackwardShape, tile: KeyValueTile): Program {
  const { maps, keyMaps, dk, dv } = shape;
  const { bkv, bq } = tile;
  const threads = BACKWARD_THREADS;
  const lanes = threads / bkv;
  const colsV = Math.ceil(dv / lanes);
  const colsK = Math.ceil(dk / lanes);
  const mapsRange = [...Array(maps).keys()];
  const keyMapsRange = [...Array(keyMaps).keys()];
  const colV = (i: number) => `min(lane + ${lanes * i}u, ${dv - 1}u)`;
  const colK = (i: number) => `min(lane + ${lanes * i}u, ${dk - 1}u)`;
  const keyMapOf = (m: number) => (keyMaps === 2 ? m : 0);
  const tileSize = bq * bkv;
  const declarations = [
    ...[...Array(colsV).keys()].map((i) => `  var dv${i} = 0.0;`),
    ...keyMapsRange.flatMap((km) => [...Array(colsK).keys()].map((i) => `  var dk${km}_${i} = 0.0;`)),
  ].join('\n');
  const accumulate = [
    `        let weight = Ps[i * ${bkv}u + jj];`,
    ...[...Array(colsV).keys()].map((i) => `        dv${i} = fma(weight, Us[i * ${dv}u + ${colV(i)}], dv${i});`),
    ...mapsRange.flatMap((m) => [
      `        let ds${m} = Ss[${m * tileSize}u + i * ${bkv}u + jj];`,
      ...[...Array(colsK).keys()].map(
        (i) =>
          `        dk${keyMapOf(m)}_${i} = ` +
          `fma(ds${m}, Qs[(${m * bq}u + i) * ${dk}u + ${colK(i)}], dk${keyMapOf(m)}_${i});`,
      ),
    ]),
  ].join('\n');
  const guard = (cols: number, width: number, i: number, statement: string) =>
    cols * lanes !== width ? `if (lane + ${lanes * i}u < ${width}u) { ${statement} }` : statement;
  const write = [
    ...[...Array(colsV).keys()].map(
      (i) => `    ${guard(colsV, dv, i, `dV[valueAt(b, s, g) + lane + ${lanes * i}u] = dv${i};`)}`,
    ),
    ...keyMapsRange.flatMap((km) =>
      [...Array(colsK).keys()].map(
        (i) =>
          `    ${guard(colsK, dk, i, `dK[keyAt(b, s, g, ${km}u) + lane + ${lanes * i}u] = dk${km}_${i} * p.scale;`)}`,
      ),
    ),
  ].join('\n');

  return {
    key: `attention-backward/key-major/${shapeKey(shape)}/bkv${bkv}/bq${bq}`,
    layout: 'rrrrrww',
    workgroupBytes: 4 * keyValueWorkgroupFloats(shape, tile),
    code: () => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> dU: array<f32>;
@group(0) @binding(5) var<storage, read> terms: array<f32>;
@group(0) @binding(6) var<storage, read_write> dK: array<f32>;
@group(0) @binding(7) var<storage, read_write> dV: array<f32>;
${indexing(shape)}

var<workgroup> Qs: array<f32, ${maps * bq * dk}>;
var<workgroup> Us: array<f32, ${bq * dv}>;
var<workgroup> Ss: array<f32, ${maps * tileSize}>;
var<workgroup> Ps: array<f32, ${tileSize}>;
var<workgroup> Ts: array<f32, ${maps * bq * TERMS_PER_MAP}>;

@compute @workgroup_size(${threads})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  let block = group % p.blocks;
  let g = (group / p.blocks) % p.kvHeads;
  let b = group / (p.blocks * p.kvHeads);
  if (b >= p.batch) { return; }
  let jj = lid / ${lanes}u;
  let lane = lid % ${lanes}u;
  let s0 = block * ${bkv}u;
  // The heads of group g (h·Hkv/H = g), and the first query that sees key s0.
  let hStart = (g * p.heads + p.kvHeads - 1u) / p.kvHeads;
  let hEnd = ((g + 1u) * p.heads + p.kvHeads - 1u) / p.kvHeads;
  var tStart = 0u;
  if (p.causal != 0u && s0 > p.keyOffset) { tStart = s0 - p.keyOffset; }
  var tEnd = p.tokens;
  if (s0 >= p.keyLength) { tEnd = 0u; }
${declarations}

  for (var h = hStart; h < hEnd; h++) {
    for (var t0 = tStart; t0 < tEnd; t0 += ${bq}u) {
      for (var e = lid; e < ${maps * bq * dk}u; e += ${threads}u) {
        let m = e / ${bq * dk}u;
        let r = e % ${bq * dk}u;
        let t = t0 + r / ${dk}u;
        var x = 0.0;
        if (t < p.tokens) { x = q[queryAt(b, t, h, m) + r % ${dk}u]; }
        Qs[e] = x;
      }
      for (var e = lid; e < ${bq * dv}u; e += ${threads}u) {
        let t = t0 + e / ${dv}u;
        var x = 0.0;
        if (t < p.tokens) { x = dU[rowOf(b, t, h) * ${dv}u + e % ${dv}u]; }
        Us[e] = x;
      }
      for (var e = lid; e < ${maps * bq * TERMS_PER_MAP}u; e += ${threads}u) {
        let t = t0 + e / ${maps * TERMS_PER_MAP}u;
        var x = 0.0;
        if (t < p.tokens) { x = terms[rowOf(b, t, h) * ${maps * TERMS_PER_MAP}u + e % ${maps * TERMS_PER_MAP}u]; }
        Ts[e] = x;
      }
      workgroupBarrier();

      // Raw scores of every map (Ss) and dP = dU·Vᵀ (Ps), masked entries 0.
      for (var e = lid; e < ${(maps + 1) * tileSize}u; e += ${threads}u) {
        let which = e / ${tileSize}u;
        let r = e % ${tileSize}u;
        let i = r / ${bkv}u;
        let t = t0 + i;
        let s = s0 + r % ${bkv}u;
        var dot = 0.0;
        if (t < p.tokens && s < visibleEnd(t)) {
          if (which < ${maps}u) {
            let qBase = (which * ${bq}u + i) * ${dk}u;
            let kBase = keyAt(b, s, g, ${keyMaps === 2 ? 'which' : '0u'});
            for (var d = 0u; d < ${dk}u; d++) { dot = fma(Qs[qBase + d], k[kBase + d], dot); }
          } else {
            let vBase = valueAt(b, s, g);
            for (var c = 0u; c < ${dv}u; c++) { dot = fma(Us[i * ${dv}u + c], v[vBase + c], dot); }
          }
        }
        if (which < ${maps}u) { Ss[e] = dot; } else { Ps[r] = dot; }
      }
      workgroupBarrier();
${transform(maps, bq, bkv, true, 't0', 's0')}
      workgroupBarrier();

      for (var i = 0u; i < ${bq}u; i++) {
${accumulate}
      }
      workgroupBarrier();
    }
  }

  let s = s0 + jj;
  if (s < p.capacity) {
${write}
  }
}`,
  };
}

/** The query-major pass's tile: BQ queries per workgroup, BK keys per staged tile. */
export interface QueryTile {
  readonly bq: number;
  readonly bk: number;
}

/** Workgroup memory of the query-major pass, in floats (must match the declarations below). */
export function queryWorkgroupFloats(shape: BackwardShape, tile: QueryTile): number {
  const { maps, keyMaps, dk, dv } = shape;
  const { bq, bk } = tile;
  return keyMaps * bk * dk + bk * dv + (maps + 1) * bq * bk + maps * bq * TERMS_PER_MAP;
}

/** dQ: one workgroup per (b, h, block of BQ queries); see the file comment. */
export function queryProgram(shape: BackwardShape, tile: QueryTile): Program {
  const { maps, keyMaps, dk, dv } = shape;
  const { bq, bk } = tile;
  const threads = BACKWARD_THREADS;
  const lanes = threads / bq;
  const cols = Math.ceil(dk / lanes);
  const mapsRange = [...Array(maps).keys()];
  const colsRange = [...Array(cols).keys()];
  const col = (i: number) => `min(lane + ${lanes * i}u, ${dk - 1}u)`;
  const keyMapOf = (m: number) => (keyMaps === 2 ? m : 0);
  const tileSize = bq * bk;
  const declarations = mapsRange.flatMap((m) => colsRange.map((i) => `  var dq${m}_${i} = 0.0;`)).join('\n');
  const accumulate = mapsRange
    .flatMap((m) => [
      `        let ds${m} = Ss[${m * tileSize}u + qi * ${bk}u + j];`,
      ...colsRange.map(
        (i) => `        dq${m}_${i} = fma(ds${m}, Ks[(${keyMapOf(m) * bk}u + j) * ${dk}u + ${col(i)}], dq${m}_${i});`,
      ),
    ])
    .join('\n');
  const write = mapsRange
    .flatMap((m) =>
      colsRange.map((i) => {
        const statement = `dQ[queryAt(b, t, h, ${m}u) + lane + ${lanes * i}u] = dq${m}_${i} * p.scale;`;
        return `    ${cols * lanes !== dk ? `if (lane + ${lanes * i}u < ${dk}u) { ${statement} }` : statement}`;
      }),
    )
    .join('\n');

  return {
    key: `attention-backward/query-major/${shapeKey(shape)}/bq${bq}/bk${bk}`,
    layout: 'rrrrrw',
    workgroupBytes: 4 * queryWorkgroupFloats(shape, tile),
    code: () => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> dU: array<f32>;
@group(0) @binding(5) var<storage, read> terms: array<f32>;
@group(0) @binding(6) var<storage, read_write> dQ: array<f32>;
${indexing(shape)}

var<workgroup> Ks: array<f32, ${keyMaps * bk * dk}>;
var<workgroup> Vs: array<f32, ${bk * dv}>;
var<workgroup> Ss: array<f32, ${maps * tileSize}>;
var<workgroup> Ps: array<f32, ${tileSize}>;
var<workgroup> Ts: array<f32, ${maps * bq * TERMS_PER_MAP}>;

@compute @workgroup_size(${threads})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  let block = group % p.blocks;
  let h = (group / p.blocks) % p.heads;
  let b = group / (p.blocks * p.heads);
  if (b >= p.batch) { return; }
  let g = (h * p.kvHeads) / p.heads;
  let t0 = block * ${bq}u;
  let qi = lid / ${lanes}u;
  let lane = lid % ${lanes}u;
  // Keys this block reads: those its last query sees.
  let blockEnd = visibleEnd(min(p.tokens, t0 + ${bq}u) - 1u);

  for (var e = lid; e < ${maps * bq * TERMS_PER_MAP}u; e += ${threads}u) {
    let t = t0 + e / ${maps * TERMS_PER_MAP}u;
    var x = 0.0;
    if (t < p.tokens) { x = terms[rowOf(b, t, h) * ${maps * TERMS_PER_MAP}u + e % ${maps * TERMS_PER_MAP}u]; }
    Ts[e] = x;
  }
${declarations}

  for (var s0 = 0u; s0 < blockEnd; s0 += ${bk}u) {
    for (var e = lid; e < ${keyMaps * bk * dk}u; e += ${threads}u) {
      let km = e / ${bk * dk}u;
      let r = e % ${bk * dk}u;
      let s = s0 + r / ${dk}u;
      var x = 0.0;
      if (s < blockEnd) { x = k[keyAt(b, s, g, km) + r % ${dk}u]; }
      Ks[e] = x;
    }
    for (var e = lid; e < ${bk * dv}u; e += ${threads}u) {
      let s = s0 + e / ${dv}u;
      var x = 0.0;
      if (s < blockEnd) { x = v[valueAt(b, s, g) + e % ${dv}u]; }
      Vs[e] = x;
    }
    workgroupBarrier();

    for (var e = lid; e < ${(maps + 1) * tileSize}u; e += ${threads}u) {
      let which = e / ${tileSize}u;
      let r = e % ${tileSize}u;
      let i = r / ${bk}u;
      let j = r % ${bk}u;
      let t = t0 + i;
      let s = s0 + j;
      var dot = 0.0;
      if (t < p.tokens && s < visibleEnd(t)) {
        if (which < ${maps}u) {
          let qBase = queryAt(b, t, h, which);
          let kBase = (${keyMaps === 2 ? 'which' : '0u'} * ${bk}u + j) * ${dk}u;
          for (var d = 0u; d < ${dk}u; d++) { dot = fma(q[qBase + d], Ks[kBase + d], dot); }
        } else {
          let uBase = rowOf(b, t, h) * ${dv}u;
          for (var c = 0u; c < ${dv}u; c++) { dot = fma(dU[uBase + c], Vs[j * ${dv}u + c], dot); }
        }
      }
      if (which < ${maps}u) { Ss[e] = dot; } else { Ps[r] = dot; }
    }
    workgroupBarrier();
${transform(maps, bq, bk, false, 't0', 's0')}
    workgroupBarrier();

    for (var j = 0u; j < ${bk}u; j++) {
${accumulate}
    }
    workgroupBarrier();
  }

  let t = t0 + qi;
  if (t < p.tokens) {
${write}
  }
}`,
  };
}

/** Tree reduction over ROW_PASS_THREADS values of `array` (f32 or vec2f); the result in array[0]. */
function treeReduce(array: string): string {
  return /* wgsl */ `
  workgroupBarrier();
  for (var stride = ${ROW_PASS_THREADS / 2}u; stride > 0u; stride = stride >> 1u) {
    if (lid < stride) { ${array}[lid] = ${array}[lid] + ${array}[lid + stride]; }
    workgroupBarrier();
  }`;
}

/**
 * Standard attention's row terms: (lse, D = rowsum(dOut ⊙ output), 1, 0), one thread per row. Bindings:
 * dOut, output, logSumExp, terms.
 */
export function standardRowProgram(dv: number): Program {
  return {
    key: `attention-backward/rows/standard/dv${dv}`,
    layout: 'rrrw',
    code: () => /* wgsl */ `
struct Params { rows: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dOut: array<f32>;
@group(0) @binding(2) var<storage, read> output: array<f32>;
@group(0) @binding(3) var<storage, read> logSumExp: array<f32>;
@group(0) @binding(4) var<storage, read_write> terms: array<f32>;

@compute @workgroup_size(${ROW_PASS_THREADS})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  let row = group * ${ROW_PASS_THREADS}u + lid;
  if (row >= p.rows) { return; }
  let base = row * ${dv}u;
  var dot = 0.0;
  for (var c = 0u; c < ${dv}u; c++) { dot = fma(dOut[base + c], output[base + c], dot); }
  terms[row * 4u] = logSumExp[row];
  terms[row * 4u + 1u] = dot;
  terms[row * 4u + 2u] = 1.0;
  terms[row * 4u + 3u] = 0.0;
}`,
  };
}

/**
 * Differential attention's row pass (see the file comment). Bindings: dOut, mapOutputs, lambdas,
 * normWeight, logSumExp; dU, terms, and with a norm weight nScaled (n·outputScale, for dNormWeight).
 */
export function diffRowProgram(dv: number, weighted: boolean): Program {
  const threads = ROW_PASS_THREADS;
  const cols = Math.ceil(dv / threads);
  const colsRange = [...Array(cols).keys()];
  const col = (i: number) => `(lid + ${threads * i}u)`;
  const guarded = cols * threads !== dv;
  // Columns past dv (when dv is not a multiple of the threads) read column dv − 1 and count for nothing.
  const load = colsRange
    .map(
      (i) => `  let c${i} = min(${col(i)}, ${dv - 1}u);
  let live${i} = ${guarded ? `select(0.0, 1.0, ${col(i)} < ${dv}u)` : '1.0'};
  let a${i} = mapOutputs[(group * 2u) * ${dv}u + c${i}] * live${i};
  let b${i} = mapOutputs[(group * 2u + 1u) * ${dv}u + c${i}] * live${i};
  let u${i} = a${i} - lambda * b${i};
  let dy${i} = dOut[group * ${dv}u + c${i}] * live${i};
  var du${i} = dy${i};`,
    )
    .join('\n');
  const store = (i: number, statement: string) => (guarded ? `if (${col(i)} < ${dv}u) { ${statement} }` : statement);
  return {
    key: `attention-backward/rows/diff/dv${dv}${weighted ? '/weighted' : ''}`,
    layout: weighted ? 'rrrrrwww' : 'rrrrrww',
    code: () => /* wgsl */ `
struct Params { rows: u32, heads: u32, lambdaPerToken: u32, hasNorm: u32, hasWeight: u32, eps: f32, outputScale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dOut: array<f32>;
@group(0) @binding(2) var<storage, read> mapOutputs: array<f32>;
@group(0) @binding(3) var<storage, read> lambdas: array<f32>;
@group(0) @binding(4) var<storage, read> normWeight: array<f32>;
@group(0) @binding(5) var<storage, read> logSumExp: array<f32>;
@group(0) @binding(6) var<storage, read_write> dU: array<f32>;
@group(0) @binding(7) var<storage, read_write> terms: array<f32>;
${weighted ? '@group(0) @binding(8) var<storage, read_write> nScaled: array<f32>;' : ''}
var<workgroup> partial: array<vec2f, ${threads}>;
var<workgroup> dUs: array<f32, ${dv}>;

@compute @workgroup_size(${threads})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  if (group >= p.rows) { return; }
  var lambda = lambdas[group % p.heads];
  if (p.lambdaPerToken != 0u) { lambda = lambdas[group]; }
${load}
  if (p.hasNorm != 0u) {
    // y = u·r⁻¹·w·outputScale: du = r⁻¹·g − r⁻³·u·(g·u)/dv with g = dy·w·outputScale.
    var sums = vec2f(0.0);
${colsRange
  .map(
    (i) => `    var w${i} = p.outputScale;
    if (p.hasWeight != 0u) { w${i} = normWeight[c${i}] * p.outputScale; }
    sums += vec2f(u${i} * u${i}, dy${i} * w${i} * u${i});`,
  )
  .join('\n')}
    partial[lid] = sums;
    ${treeReduce('partial')}
    let inverse = 1.0 / sqrt(partial[0].x / ${dv}.0 + p.eps);
    let projection = partial[0].y * inverse * inverse * inverse / ${dv}.0;
${colsRange.map((i) => `    du${i} = inverse * dy${i} * w${i} - projection * u${i};`).join('\n')}
${
  weighted
    ? colsRange
        .map((i) => `    ${store(i, `nScaled[group * ${dv}u + ${col(i)}] = u${i} * inverse * p.outputScale;`)}`)
        .join('\n')
    : ''
}
  }
${colsRange.map((i) => `  ${store(i, `dU[group * ${dv}u + ${col(i)}] = du${i}; dUs[${col(i)}] = du${i};`)}`).join('\n')}
  workgroupBarrier();
  if (lid == 0u) {
    // D₁ = dU·A and D₂ = dU·B in the order the other passes sum dP = dU·v.
    var dotA = 0.0;
    var dotB = 0.0;
    for (var c = 0u; c < ${dv}u; c++) {
      dotA = fma(dUs[c], mapOutputs[group * ${2 * dv}u + c], dotA);
      dotB = fma(dUs[c], mapOutputs[group * ${2 * dv}u + ${dv}u + c], dotB);
    }
    let base = group * 8u;
    terms[base] = logSumExp[group * 2u];
    terms[base + 1u] = dotA;
    terms[base + 2u] = 1.0;
    terms[base + 3u] = -dotB;
    terms[base + 4u] = logSumExp[group * 2u + 1u];
    terms[base + 5u] = dotB;
    terms[base + 6u] = -lambda;
    terms[base + 7u] = 0.0;
  }
}`,
  };
}
