/**
 * Deterministic reductions, without atomics: the grouping depends only on the sizes, so a call gives
 * the same bits every time.
 *
 *   REDUCE       a flat vector to one value per workgroup of REDUCE_SPAN elements: each thread adds
 *                its strided elements in order, then a tree over the workgroup; the host repeats it
 *                over the partial sums until one value is left (sumSquares, the cross-entropy loss).
 *   COLUMN_SUM   the columns of a [rows, width] matrix, in chunks of `chunkRows` rows: one thread per
 *                (chunk, column) adds its rows in order; the host repeats it over the chunks' partial
 *                sums (dWeight of rmsNorm, dλ of a per-head λ, dNormWeight). Reads a strided view,
 *                optionally times a second matrix and a per-row factor, so no product is stored.
 */
import type { Program } from '../device/pipelines.js';
import { FLAT_BUILTINS, FLAT_WORKGROUP } from './common.js';

export const REDUCE_THREADS = 256;
/** Elements per REDUCE workgroup: 8 per thread. */
export const REDUCE_SPAN = REDUCE_THREADS * 8;
export const COLUMN_THREADS = 256;

function reduceProgram(squares: boolean): Program {
  return {
    key: `reduce/${squares ? 'squares' : 'sum'}`,
    layout: 'rw',
    code: () => /* wgsl */ `
struct Params { n: u32, groups: u32, factor: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
var<workgroup> partial: array<f32, ${REDUCE_THREADS}>;

@compute @workgroup_size(${REDUCE_THREADS})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  if (group >= p.groups) { return; }
  let base = group * ${REDUCE_SPAN}u;
  var sum = 0.0;
  for (var i = base + lid; i < min(p.n, base + ${REDUCE_SPAN}u); i += ${REDUCE_THREADS}u) {
    let value = x[i];
    sum += ${squares ? 'value * value' : 'value'};
  }
  partial[lid] = sum;
  workgroupBarrier();
  for (var stride = ${REDUCE_THREADS / 2}u; stride > 0u; stride = stride >> 1u) {
    if (lid < stride) { partial[lid] = partial[lid] + partial[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u) { y[group] = partial[0] * p.factor; }
}`,
  };
}

/** Σ x² per workgroup (the first level of sumSquares). */
export const REDUCE_SQUARES = reduceProgram(true);
/** Σ x per workgroup (every later level, and the cross-entropy loss). */
export const REDUCE_SUM = reduceProgram(false);

/**
 * out[chunk, c] = Σ_{r in chunk} x[r·rowStride + c·columnStride + offset] (· y[same index] if hasY)
 * (· rowScale[r] if hasRowScale). Bindings: x, y, rowScale, out.
 */
export const COLUMN_SUM: Program = {
  key: 'reduce/columns',
  layout: 'rrrw',
  code: () => /* wgsl */ `
struct Params {
  rows: u32, width: u32, chunkRows: u32, chunks: u32,
  rowStride: u32, columnStride: u32, offset: u32, hasY: u32, hasRowScale: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> rowScale: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(${COLUMN_THREADS})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  let i = group * ${COLUMN_THREADS}u + lid;
  if (i >= p.chunks * p.width) { return; }
  let c = i % p.width;
  let chunk = i / p.width;
  let start = chunk * p.chunkRows;
  let end = min(p.rows, start + p.chunkRows);
  var sum = 0.0;
  for (var r = start; r < end; r++) {
    let index = r * p.rowStride + c * p.columnStride + p.offset;
    var term = x[index];
    if (p.hasY != 0u) { term = term * y[index]; }
    if (p.hasRowScale != 0u) { term = term * rowScale[r]; }
    sum += term;
  }
  out[i] = sum;
}`,
};
