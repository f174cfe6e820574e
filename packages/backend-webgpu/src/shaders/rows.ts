/**
 * Row-wise shaders: one workgroup of ROW_THREADS threads per row of the last dimension, reducing in
 * workgroup memory (a tree over ROW_THREADS partial results). rmsNorm reduces Σx², softmax a maximum
 * then Σexp, argmax a (value, index) pair that keeps the lowest index on ties; rmsNorm's backward
 * reduces (Σx², Σ g·x) together, the cross-entropy a maximum then Σexp.
 */
import type { Program } from '../device/pipelines.js';
import { FLAT_BUILTINS, FLAT_WORKGROUP } from './common.js';

const ROW_THREADS = 256;

/** Tree reduction of `partial` (ROW_THREADS values) with `combine(a, b)`; leaves the result in partial[0]. */
function treeReduce(array: string, combine: (a: string, b: string) => string): string {
  return /* wgsl */ `
  workgroupBarrier();
  for (var stride = ${ROW_THREADS / 2}u; stride > 0u; stride = stride >> 1u) {
    if (lid < stride) { ${array}[lid] = ${combine(`${array}[lid]`, `${array}[lid + stride]`)}; }
    workgroupBarrier();
  }`;
}

/** y = x / √(mean(x²) + eps) · weight (hasWeight = 0: weight is 1). */
export const RMS_NORM: Program = {
  key: 'rows/rmsNorm',
  layout: 'rrw',
  code: () => /* wgsl */ `
struct Params { rows: u32, width: u32, hasWeight: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
var<workgroup> partial: array<f32, ${ROW_THREADS}>;
@compute @workgroup_size(${ROW_THREADS})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  if (group >= p.rows) { return; }
  let base = group * p.width;
  var sum = 0.0;
  for (var i = lid; i < p.width; i += ${ROW_THREADS}u) { let v = x[base + i]; sum += v * v; }
  partial[lid] = sum;
  ${treeReduce('partial', (a, b) => `${a} + ${b}`)}
  let inverse = 1.0 / sqrt(partial[0] / f32(p.width) + p.eps);
  for (var i = lid; i < p.width; i += ${ROW_THREADS}u) {
    var g = inverse;
    if (p.hasWeight != 0u) { g = g * weight[i]; }
    y[base + i] = x[base + i] * g;
  }
}`,
};

/** softmax(x / T) over each row: the maximum first (so exp cannot overflow), then Σ exp. */
export const SOFTMAX: Program = {
  key: 'rows/softmax',
  layout: 'rw',
  code: () => /* wgsl */ `
struct Params { rows: u32, width: u32, inverseTemperature: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
var<workgroup> partial: array<f32, ${ROW_THREADS}>;
@compute @workgroup_size(${ROW_THREADS})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  if (group >= p.rows) { return; }
  let base = group * p.width;
  var m = x[base];
  for (var i = lid; i < p.width; i += ${ROW_THREADS}u) { m = max(m, x[base + i]); }
  partial[lid] = m;
  ${treeReduce('partial', (a, b) => `max(${a}, ${b})`)}
  let rowMax = partial[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var i = lid; i < p.width; i += ${ROW_THREADS}u) { sum += exp((x[base + i] - rowMax) * p.inverseTemperature); }
  partial[lid] = sum;
  ${treeReduce('partial', (a, b) => `${a} + ${b}`)}
  let inverseSum = 1.0 / partial[0];
  for (var i = lid; i < p.width; i += ${ROW_THREADS}u) {
    y[base + i] = exp((x[base + i] - rowMax) * p.inverseTemperature) * inverseSum;
  }
}`,
};

/** Index of each row's maximum (int32); a tie keeps the lowest index, as a left-to-right scan would. */
export const ARGMAX: Program = {
  key: 'rows/argmax',
  layout: 'rw',
  code: () => /* wgsl */ `
struct Params { rows: u32, width: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<i32>;
var<workgroup> bestValue: array<f32, ${ROW_THREADS}>;
var<workgroup> bestIndex: array<u32, ${ROW_THREADS}>;
@compute @workgroup_size(${ROW_THREADS})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  if (group >= p.rows) { return; }
  let base = group * p.width;
  // Each thread scans its strided elements in increasing order, so strict > keeps its lowest index.
  var value = 0.0;
  var index = 0xffffffffu;
  if (lid < p.width) { value = x[base + lid]; index = lid; }
  for (var i = lid + ${ROW_THREADS}u; i < p.width; i += ${ROW_THREADS}u) {
    let v = x[base + i];
    if (v > value) { value = v; index = i; }
  }
  bestValue[lid] = value;
  bestIndex[lid] = index;
  workgroupBarrier();
  for (var stride = ${ROW_THREADS / 2}u; stride > 0u; stride = stride >> 1u) {
    if (lid < stride) {
      let v = bestValue[lid + stride];
      let j = bestIndex[lid + stride];
      let better = j != 0xffffffffu &&
        (bestIndex[lid] == 0xffffffffu || v > bestValue[lid] || (v == bestValue[lid] && j < bestIndex[lid]));
      if (better) { bestValue[lid] = v; bestIndex[lid] = j; }
    }
    workgroupBarrier();
  }
  if (lid == 0u) { y[group] = i32(bestIndex[0]); }
}`,
};

/**
 * rmsNorm's backward per row, with r⁻¹ = 1/√(mean(x²) + eps) and g = dy·w:
 *   dx_i = r⁻¹·g_i − r⁻³·x_i·(Σ_j g_j·x_j)/W = r⁻³·(eps·g_i + (g_i·Σ_{j≠i} x_j² − x_i·Σ_{j≠i} g_j·x_j)/W),
 * the second form because the j = i terms cancel exactly there: written as the first, a row where x_i
 * dominates (width 1 above all) loses the eps·g_i that is the whole answer to float32 round-off.
 * r⁻¹ is kept per row for dWeight = Σ_rows dy·x·r⁻¹ (COLUMN_SUM).
 */
export const RMS_NORM_BACKWARD: Program = {
  key: 'rows/rmsNormBackward',
  layout: 'rrrww',
  code: () => /* wgsl */ `
struct Params { rows: u32, width: u32, hasWeight: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read_write> inverseRms: array<f32>;
var<workgroup> partial: array<vec2f, ${ROW_THREADS}>;
@compute @workgroup_size(${ROW_THREADS})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  if (group >= p.rows) { return; }
  let base = group * p.width;
  var sums = vec2f(0.0);
  for (var i = lid; i < p.width; i += ${ROW_THREADS}u) {
    let v = x[base + i];
    var g = dy[base + i];
    if (p.hasWeight != 0u) { g = g * weight[i]; }
    sums += vec2f(v * v, g * v);
  }
  partial[lid] = sums;
  ${treeReduce('partial', (a, b) => `${a} + ${b}`)}
  let totals = partial[0];
  let inverse = 1.0 / sqrt(totals.x / f32(p.width) + p.eps);
  let cube = inverse * inverse * inverse;
  for (var i = lid; i < p.width; i += ${ROW_THREADS}u) {
    let v = x[base + i];
    var g = dy[base + i];
    if (p.hasWeight != 0u) { g = g * weight[i]; }
    let others = totals - vec2f(v * v, g * v);
    dx[base + i] = cube * (p.eps * g + (g * others.x - v * others.y) / f32(p.width));
  }
  if (lid == 0u) { inverseRms[group] = inverse; }
}`,
};

/**
 * The fused cross-entropy per row: lse = max + ln Σ e^(x − max); the row's loss lse − x[target] (the
 * host sums the rows with REDUCE_SUM) and dLogits = scale·(e^(x − lse) − onehot(target)); a row whose
 * target is ignoreIndex or outside [0, V) gets loss 0 and a zero gradient.
 */
export const CROSS_ENTROPY: Program = {
  key: 'rows/crossEntropy',
  layout: 'rrww',
  code: () => /* wgsl */ `
struct Params { rows: u32, width: u32, ignoreIndex: i32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> dLogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> rowLoss: array<f32>;
var<workgroup> partial: array<f32, ${ROW_THREADS}>;
@compute @workgroup_size(${ROW_THREADS})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  if (group >= p.rows) { return; }
  let base = group * p.width;
  let targetIndex = targets[group];
  let counted = targetIndex != p.ignoreIndex && targetIndex >= 0 && targetIndex < i32(p.width);
  var m = logits[base];
  for (var i = lid; i < p.width; i += ${ROW_THREADS}u) { m = max(m, logits[base + i]); }
  partial[lid] = m;
  ${treeReduce('partial', (a, b) => `max(${a}, ${b})`)}
  let rowMax = partial[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var i = lid; i < p.width; i += ${ROW_THREADS}u) { sum += exp(logits[base + i] - rowMax); }
  partial[lid] = sum;
  ${treeReduce('partial', (a, b) => `${a} + ${b}`)}
  let logSumExp = rowMax + log(partial[0]);
  for (var i = lid; i < p.width; i += ${ROW_THREADS}u) {
    var gradient = 0.0;
    if (counted) {
      gradient = p.scale * (exp(logits[base + i] - logSumExp) - select(0.0, 1.0, i32(i) == targetIndex));
    }
    dLogits[base + i] = gradient;
  }
  if (lid == 0u) {
    var loss = 0.0;
    if (counted) { loss = logSumExp - logits[base + u32(targetIndex)]; }
    rowLoss[group] = loss;
  }
}`,
};
