/**
 * Streaming attention, standard (one map) and differential (two maps), in one shader generator.
 *
 * One workgroup of THREADS threads handles BQ queries of one head h of one batch entry b, thread
 * (query qi, lane) owning columns lane + LANES·i of that query's output. Keys stream in tiles of BK:
 *   1. stage the tile's keys (per map, or shared) and values in workgroup memory, key rows dk + 1
 *      floats apart (an odd stride: threads reading different keys at one dimension hit different
 *      banks, where dk, a multiple of 32, would put them all on one);
 *   2. scores S = scale · q·k for every (map, query, key) of the tile, masked (causal, keyLength,
 *      the partition's range) to a sentinel below every real score: thread (row, sub) of a (map,
 *      query) row takes keys sub, sub + SUBS, …, so each q value it loads serves all of them;
 *   3. one thread per (map, query) row updates the online softmax: the new running maximum, the
 *      factor e^(old − new) that rescales what was accumulated, and P = e^(S − max) in place of S;
 *   4. every thread adds P·V for its columns, both maps from the same staged value rows.
 * Nothing of size T×S exists: the scores live one tile at a time in workgroup memory.
 *
 * At the end either
 *   - the output row is finished: softmax₁·V − λ·softmax₂·V (or softmax·V), then, with the fused
 *     norm, RMSNorm over the row (a reduction across the query's lanes) × weight × outputScale; when
 *     the uniform saveStatistics is set, each map's log-sum-exp (max + ln sum) and, for two maps, each
 *     map's own output softmax_m·V are written too: what the backward (./attention-backward.ts)
 *     recomputes tiles from. One program serves both, so training compiles no extra pipeline; or
 *   - (split-K) the partial maximum, sum and accumulator of this workgroup's key partition are
 *     written out, and COMBINE merges the partitions of each row and finishes it. Decoding (T = 1)
 *     has one query per head: splitting the keys across workgroups keeps a long cache from running on
 *     a handful of workgroups.
 *
 * WGSL lets an implementation assume there are no infinities, so masking uses a finite sentinel and
 * explicit selects rather than −∞ and exp(−∞) = 0.
 */
import type { Program } from '../device/pipelines.js';
import { FLAT_BUILTINS, FLAT_WORKGROUP } from './common.js';

const ATTENTION_THREADS = 128;
const COMBINE_THREADS = 64;

export interface AttentionShape {
  /** 2: differential attention (two maps); 1: standard attention. */
  readonly maps: 1 | 2;
  /** 2: each map has its own key half-head (DIFF V1); 1: the maps share keys (V2, standard). */
  readonly keyMaps: 1 | 2;
  readonly dk: number;
  readonly dv: number;
  /** Queries per workgroup (a divisor of THREADS). */
  readonly bq: number;
  /** Keys per tile. */
  readonly bk: number;
  /** Write partial results for COMBINE instead of the output. */
  readonly split: boolean;
}

const NEG = '-3.0e38';
const NEG_HALF = '-1.0e38';

/** Floats of a workgroup variable as the limit counts them: each rounded up to 16 bytes. */
const rounded = (floats: number) => Math.ceil(floats / 4) * 4;

/**
 * Workgroup memory of a shape, in floats: every declaration below, each rounded up to 16 bytes as
 * WebGPU's maxComputeWorkgroupStorageSize counts them.
 */
export function attentionWorkgroupFloats(shape: Omit<AttentionShape, 'split'>): number {
  const lanes = ATTENTION_THREADS / shape.bq;
  const cols = Math.ceil(shape.dv / lanes);
  const rows = shape.maps * shape.bq;
  return (
    rounded(shape.keyMaps * shape.bk * (shape.dk + 1)) +
    rounded(shape.bk * shape.dv + lanes * cols) +
    rounded(rows * shape.bk) +
    3 * rounded(rows) +
    rounded(ATTENTION_THREADS)
  );
}

/**
 * The bindings of the saved statistics, after the output: log-sum-exp, and map outputs for two maps
 * (small placeholders when the call saves none).
 */
function statisticsBindings(first: number, maps: 1 | 2): string {
  return (
    `@group(0) @binding(${first}) var<storage, read_write> logSumExp: array<f32>;` +
    (maps === 2 ? `\n@group(0) @binding(${first + 1}) var<storage, read_write> mapOutputs: array<f32>;` : '')
  );
}

/** Storage layout of the statistics bindings. */
export function statisticsLayout(maps: 1 | 2): string {
  return maps === 2 ? 'ww' : 'w';
}

/** The uniform block shared by the attention and combine shaders. */
export const ATTENTION_PARAMS = /* wgsl */ `
struct Params {
  tokens: u32, heads: u32, kvHeads: u32, keyHeads: u32,
  capacity: u32, keyOffset: u32, keyLength: u32, causal: u32,
  partitions: u32, chunk: u32, hasNorm: u32, hasWeight: u32,
  lambdaPerToken: u32, scale: f32, eps: f32, outputScale: f32,
  batch: u32, blockOffset: u32, saveStatistics: u32,
}
@group(0) @binding(0) var<uniform> p: Params;`;

export function attentionProgram(shape: AttentionShape): Program {
  const { maps, keyMaps, dk, dv, bq, bk, split } = shape;
  const threads = ATTENTION_THREADS;
  const lanes = threads / bq;
  const cols = Math.ceil(dv / lanes);
  const key =
    `attention/${maps === 2 ? 'diff' : 'standard'}/${keyMaps === 2 ? 'per-map' : 'shared'}/` +
    `dk${dk}/dv${dv}/bq${bq}/bk${bk}${split ? '/split' : ''}`;
  const mapsRange = [...Array(maps).keys()];
  const colsRange = [...Array(cols).keys()];
  const acc = (m: number, i: number) => `acc_${m}_${i}`;
  const col = (i: number) => `(lane + ${lanes * i}u)`;
  const needsGuard = cols * lanes !== dv;
  const guarded = (i: number, statement: string) =>
    needsGuard ? `if (${col(i)} < ${dv}u) { ${statement} }` : statement;

  const declarations = mapsRange.flatMap((m) => colsRange.map((i) => `  var ${acc(m, i)} = 0.0;`)).join('\n');
  const rescale = mapsRange
    .map(
      (m) =>
        `    let correction${m} = rowScale[${m * bq}u + qi];\n` +
        colsRange.map((i) => `    ${acc(m, i)} = ${acc(m, i)} * correction${m};`).join('\n'),
    )
    .join('\n');
  const accumulate = [
    ...mapsRange.map((m) => `      let p${m} = S[(${m * bq}u + qi) * ${bk}u + j];`),
    ...colsRange.flatMap((i) => [
      `      let v${i} = Vs[j * ${dv}u + ${col(i)}];`,
      ...mapsRange.map((m) => `      ${acc(m, i)} = fma(p${m}, v${i}, ${acc(m, i)});`),
    ]),
  ].join('\n');

  const finish = split ? splitFinish() : outputFinish();

  function splitFinish(): string {
    return /* wgsl */ `
  if (t < p.tokens) {
    let rowIndex = (((b * p.heads + h) * p.tokens + t) * p.partitions + part) * ${maps}u;
${mapsRange
  .map(
    (m) => `    {
      let base = (rowIndex + ${m}u) * ${dv + 2}u;
      if (lane == 0u) { result[base] = rowMax[${m * bq}u + qi]; result[base + 1u] = rowSum[${m * bq}u + qi]; }
${colsRange.map((i) => `      ${guarded(i, `result[base + 2u + ${col(i)}] = ${acc(m, i)};`)}`).join('\n')}
    }`,
  )
  .join('\n')}
  }`;
  }

  function outputFinish(): string {
    // Each map's own output first (softmax_m·V), then their difference: the saved map outputs and the
    // output are the same numbers, so the backward's u = A − λ·B is this kernel's.
    const mapOutputs = mapsRange
      .map(
        (m) =>
          `  let inverse${m} = 1.0 / rowSum[${m * bq}u + qi];\n` +
          colsRange.map((i) => `  let map${m}_${i} = ${acc(m, i)} * inverse${m};`).join('\n'),
      )
      .join('\n');
    const values =
      maps === 2
        ? /* wgsl */ `
  let tq = min(t, p.tokens - 1u);
  var lambda = lambdas[h];
  if (p.lambdaPerToken != 0u) { lambda = lambdas[(b * p.tokens + tq) * p.heads + h]; }
${mapOutputs}
${colsRange.map((i) => `  var out${i} = map0_${i} - lambda * map1_${i};`).join('\n')}
  if (p.hasNorm != 0u) {
    var squares = 0.0;
${colsRange.map((i) => `    ${guarded(i, `squares += out${i} * out${i};`)}`).join('\n')}
    reduction[lid] = squares;
    workgroupBarrier();
    var total = 0.0;
    for (var l = 0u; l < ${lanes}u; l++) { total += reduction[qi * ${lanes}u + l]; }
    let gain = p.outputScale / sqrt(total / ${dv}.0 + p.eps);
${colsRange
  .map(
    (i) =>
      `    { var w = 1.0; if (p.hasWeight != 0u) { w = normWeight[min(${col(i)}, ${dv - 1}u)]; } ` +
      `out${i} = out${i} * gain * w; }`,
  )
  .join('\n')}
  }`
        : /* wgsl */ `
${mapOutputs}
${colsRange.map((i) => `  let out${i} = map0_${i};`).join('\n')}`;
    const saved = `
    if (p.saveStatistics != 0u) {
      let row = (b * p.tokens + t) * p.heads + h;
      if (lane == 0u) {
${mapsRange
  .map((m) => `        logSumExp[row * ${maps}u + ${m}u] = rowMax[${m * bq}u + qi] + log(rowSum[${m * bq}u + qi]);`)
  .join('\n')}
      }
${
  maps === 2
    ? mapsRange
        .flatMap((m) =>
          colsRange.map(
            (i) => `      ${guarded(i, `mapOutputs[(row * 2u + ${m}u) * ${dv}u + ${col(i)}] = map${m}_${i};`)}`,
          ),
        )
        .join('\n')
    : ''
}
    }`;
    return /* wgsl */ `${values}
  if (t < p.tokens) {
    let base = ((b * p.tokens + t) * p.heads + h) * ${dv}u;
${colsRange.map((i) => `    ${guarded(i, `result[base + ${col(i)}] = out${i};`)}`).join('\n')}${saved}
  }`;
  }

  const keyHead = keyMaps === 2 ? '2u * g + km' : 'g';
  // Scores: SUBS threads per (map, query) row (maps·bq divides THREADS), KPT keys each.
  const stride = dk + 1;
  const subs = threads / (maps * bq);
  const kptRange = [...Array(Math.ceil(bk / subs)).keys()];
  const keyOf = (i: number) => `(sub + ${subs * i}u)`;
  const scores = /* wgsl */ `
    {
      let row = lid / ${subs}u;
      let sub = lid % ${subs}u;
      let m = row / ${bq}u;
      let tq = t0 + row % ${bq}u;
      let qBase = ((b * p.tokens + min(tq, p.tokens - 1u)) * ${maps}u * p.heads + ${maps}u * h + m) * ${dk}u;
      let kBase = ${keyMaps === 2 ? 'm' : '0u'} * ${bk}u;
${kptRange.map((i) => `      var dot${i} = 0.0;`).join('\n')}
      for (var d = 0u; d < ${dk}u; d++) {
        let qd = q[qBase + d];
${kptRange
  .map((i) => `        dot${i} = fma(qd, Ks[(kBase + min(${keyOf(i)}, ${bk - 1}u)) * ${stride}u + d], dot${i});`)
  .join('\n')}
      }
${kptRange
  .map(
    (i) => `      if (${keyOf(i)} < ${bk}u) {
        let s = s0 + ${keyOf(i)};
        var score = ${NEG};
        if (tq < p.tokens && s < keyStop && s < visibleEnd(tq)) { score = dot${i} * p.scale; }
        S[row * ${bk}u + ${keyOf(i)}] = score;
      }`,
  )
  .join('\n')}
    }`;
  return {
    key,
    layout: `rrrrrw${split ? '' : statisticsLayout(maps)}`,
    workgroupBytes: 4 * attentionWorkgroupFloats(shape),
    code: () => /* wgsl */ `
${ATTENTION_PARAMS}
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> lambdas: array<f32>;
@group(0) @binding(5) var<storage, read> normWeight: array<f32>;
@group(0) @binding(6) var<storage, read_write> result: array<f32>;
${split ? '' : statisticsBindings(7, maps)}

var<workgroup> Ks: array<f32, ${keyMaps * bk * stride}>;
// Padded by one row of lanes so the idle columns of the last lanes read in bounds (and are never written).
var<workgroup> Vs: array<f32, ${bk * dv + lanes * cols}>;
var<workgroup> S: array<f32, ${maps * bq * bk}>;
var<workgroup> rowMax: array<f32, ${maps * bq}>;
var<workgroup> rowSum: array<f32, ${maps * bq}>;
var<workgroup> rowScale: array<f32, ${maps * bq}>;
var<workgroup> reduction: array<f32, ${threads}>;

fn visibleEnd(t: u32) -> u32 {
  if (p.causal != 0u) { return min(p.keyLength, p.keyOffset + t + 1u); }
  return p.keyLength;
}

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let h = wid.y;
  let b = wid.z / p.partitions;
  let part = wid.z % p.partitions;
  let g = (h * p.kvHeads) / p.heads;
  // A long prefill is dispatched in ranges of query blocks; blockOffset is where this range starts.
  let t0 = (wid.x + p.blockOffset) * ${bq}u;
  let qi = lid / ${lanes}u;
  let lane = lid % ${lanes}u;
  let t = t0 + qi;
  // Keys this workgroup reads: those its last query sees, cut to its partition.
  let blockEnd = visibleEnd(min(p.tokens, t0 + ${bq}u) - 1u);
  let keyStart = part * p.chunk;
  let keyStop = min(blockEnd, keyStart + p.chunk);

  if (lid < ${maps * bq}u) { rowMax[lid] = ${NEG}; rowSum[lid] = 0.0; rowScale[lid] = 1.0; }
  workgroupBarrier();
${declarations}

  for (var s0 = keyStart; s0 < keyStop; s0 += ${bk}u) {
    for (var e = lid; e < ${keyMaps * bk * dk}u; e += ${threads}u) {
      let km = e / ${bk * dk}u;
      let r = e % ${bk * dk}u;
      let s = s0 + r / ${dk}u;
      var value = 0.0;
      if (s < keyStop) { value = k[((b * p.capacity + s) * p.keyHeads + ${keyHead}) * ${dk}u + r % ${dk}u]; }
      Ks[(km * ${bk}u + r / ${dk}u) * ${stride}u + r % ${dk}u] = value;
    }
    for (var e = lid; e < ${bk * dv}u; e += ${threads}u) {
      let s = s0 + e / ${dv}u;
      var value = 0.0;
      if (s < keyStop) { value = v[((b * p.capacity + s) * p.kvHeads + g) * ${dv}u + e % ${dv}u]; }
      Vs[e] = value;
    }
    workgroupBarrier();

${scores}
    workgroupBarrier();

    if (lid < ${maps * bq}u) {
      let base = lid * ${bk}u;
      var tileMax = ${NEG};
      for (var j = 0u; j < ${bk}u; j++) { tileMax = max(tileMax, S[base + j]); }
      let previous = rowMax[lid];
      let newMax = max(previous, tileMax);
      var correction = 1.0;
      if (previous > ${NEG_HALF}) { correction = exp(previous - newMax); }
      var sum = 0.0;
      for (var j = 0u; j < ${bk}u; j++) {
        let score = S[base + j];
        var probability = 0.0;
        if (score > ${NEG_HALF}) { probability = exp(score - newMax); }
        S[base + j] = probability;
        sum += probability;
      }
      rowSum[lid] = rowSum[lid] * correction + sum;
      rowMax[lid] = newMax;
      rowScale[lid] = correction;
    }
    workgroupBarrier();

${rescale}
    for (var j = 0u; j < ${bk}u; j++) {
${accumulate}
    }
    workgroupBarrier();
  }
${finish}
}`,
  };
}

/**
 * Merges the key partitions of each (b, t, h) row written by a split attention program: the global
 * maximum M, then Σ e^(m_p − M)·l_p and Σ e^(m_p − M)·acc_p per map, and finishes the row as the
 * unsplit program would (difference, λ, fused norm, and when asked the saved log-sum-exp and map
 * outputs).
 */
export function combineProgram(maps: 1 | 2, dv: number): Program {
  const threads = COMBINE_THREADS;
  const cols = Math.ceil(dv / threads);
  const colsRange = [...Array(cols).keys()];
  const mapsRange = [...Array(maps).keys()];
  const col = (i: number) => `(lid + ${threads * i}u)`;
  const guard = (i: number, s: string) => (cols * threads !== dv ? `if (${col(i)} < ${dv}u) { ${s} }` : s);
  const merge = mapsRange
    .map(
      (m) => `
  var best${m} = ${NEG};
  for (var part = 0u; part < p.partitions; part++) {
    let base = (rowIndex + part * ${maps}u + ${m}u) * ${dv + 2}u;
    if (partial[base + 1u] > 0.0) { best${m} = max(best${m}, partial[base]); }
  }
  var sum${m} = 0.0;
${colsRange.map((i) => `  var acc${m}_${i} = 0.0;`).join('\n')}
  for (var part = 0u; part < p.partitions; part++) {
    let base = (rowIndex + part * ${maps}u + ${m}u) * ${dv + 2}u;
    let l = partial[base + 1u];
    var w = 0.0;
    if (l > 0.0) { w = exp(partial[base] - best${m}); }
    sum${m} += l * w;
${colsRange.map((i) => `    acc${m}_${i} += w * partial[base + 2u + min(${col(i)}, ${dv - 1}u)];`).join('\n')}
  }
  let inverse${m} = 1.0 / sum${m};
${colsRange.map((i) => `  let map${m}_${i} = acc${m}_${i} * inverse${m};`).join('\n')}`,
    )
    .join('\n');
  const values =
    maps === 2
      ? /* wgsl */ `
  var lambda = lambdas[h];
  if (p.lambdaPerToken != 0u) { lambda = lambdas[(b * p.tokens + t) * p.heads + h]; }
${colsRange.map((i) => `  var out${i} = map0_${i} - lambda * map1_${i};`).join('\n')}
  if (p.hasNorm != 0u) {
    var squares = 0.0;
${colsRange.map((i) => `    ${guard(i, `squares += out${i} * out${i};`)}`).join('\n')}
    reduction[lid] = squares;
    workgroupBarrier();
    for (var stride = ${threads / 2}u; stride > 0u; stride = stride >> 1u) {
      if (lid < stride) { reduction[lid] += reduction[lid + stride]; }
      workgroupBarrier();
    }
    let gain = p.outputScale / sqrt(reduction[0] / ${dv}.0 + p.eps);
${colsRange
  .map(
    (i) =>
      `    { var w = 1.0; if (p.hasWeight != 0u) { w = normWeight[min(${col(i)}, ${dv - 1}u)]; } ` +
      `out${i} = out${i} * gain * w; }`,
  )
  .join('\n')}
  }`
      : /* wgsl */ `
${colsRange.map((i) => `  let out${i} = map0_${i};`).join('\n')}`;
  const saved = `
  if (p.saveStatistics != 0u) {
    let row = (b * p.tokens + t) * p.heads + h;
    if (lid == 0u) {
${mapsRange.map((m) => `      logSumExp[row * ${maps}u + ${m}u] = best${m} + log(sum${m});`).join('\n')}
    }
${
  maps === 2
    ? mapsRange
        .flatMap((m) =>
          colsRange.map(
            (i) => `    ${guard(i, `mapOutputs[(row * 2u + ${m}u) * ${dv}u + ${col(i)}] = map${m}_${i};`)}`,
          ),
        )
        .join('\n')
    : ''
}
  }`;
  return {
    key: `attention/combine/${maps === 2 ? 'diff' : 'standard'}/dv${dv}`,
    layout: `rrrw${statisticsLayout(maps)}`,
    code: () => /* wgsl */ `
${ATTENTION_PARAMS}
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read> lambdas: array<f32>;
@group(0) @binding(3) var<storage, read> normWeight: array<f32>;
@group(0) @binding(4) var<storage, read_write> result: array<f32>;
${statisticsBindings(5, maps)}
var<workgroup> reduction: array<f32, ${threads}>;

@compute @workgroup_size(${threads})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  // Rows are (b, h, t) in the partial buffer's order.
  if (group >= p.batch * p.tokens * p.heads) { return; }
  let t = group % p.tokens;
  let h = (group / p.tokens) % p.heads;
  let b = group / (p.tokens * p.heads);
  let rowIndex = group * p.partitions * ${maps}u;
${merge}
${values}
  let outBase = ((b * p.tokens + t) * p.heads + h) * ${dv}u;
${colsRange.map((i) => `  ${guard(i, `result[outBase + ${col(i)}] = out${i};`)}`).join('\n')}${saved}
}`,
  };
}
