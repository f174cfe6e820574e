/**
 * sumSquares, and the deterministic reductions other kernels end with (the cross-entropy loss, sums
 * over rows): levels of ../shaders/reduce.ts until one value (or one row) is left, every level's
 * grouping fixed by the sizes alone.
 */
import type { OutputSpec, SumSquaresAttrs, TensorView } from '@diff-transformer/core';
import type { Runtime } from '../device/runtime.js';
import type { GpuStorage } from '../device/storage.js';
import { elementGrid, grid, params } from '../shaders/common.js';
import { COLUMN_SUM, COLUMN_THREADS, REDUCE_SPAN, REDUCE_SQUARES, REDUCE_SUM } from '../shaders/reduce.js';
import { count, outputFor, storageOf } from './storage.js';

export function sumSquares(rt: Runtime, x: TensorView, _attrs: SumSquaresAttrs, out: OutputSpec): GpuStorage {
  const y = outputFor(rt, out);
  reduceInto(rt, storageOf(x), count(x), true, 1, y);
  return y;
}

/**
 * y[0] = factor · Σ x (or Σ x²) over n elements: one level per REDUCE_SPAN-fold reduction, partial
 * sums in scratch buffers freed once the batch has run.
 */
export function reduceInto(rt: Runtime, x: GpuStorage, n: number, squares: boolean, factor: number, y: GpuStorage) {
  if (n === 0) {
    rt.clear(y);
    return;
  }
  let source = x;
  let length = n;
  let program = squares ? REDUCE_SQUARES : REDUCE_SUM;
  const scratch: GpuStorage[] = [];
  try {
    for (;;) {
      const groups = Math.ceil(length / REDUCE_SPAN);
      const last = groups === 1;
      const target = last ? y : rt.allocate(groups * 4, 'float32');
      if (!last) scratch.push(target);
      rt.dispatch(
        program,
        [source, target],
        params()
          .u(length, groups)
          .f(last ? factor : 1).words,
        grid(groups),
      );
      if (last) return;
      source = target;
      length = groups;
      program = REDUCE_SUM;
    }
  } finally {
    for (const s of scratch) rt.free(s);
  }
}

/** Rows per chunk of a column sum's level: each thread adds this many rows in order. */
export const CHUNK_ROWS = 64;

/** A strided [rows, width] view of a buffer, optionally times a same-shaped view and a per-row factor. */
export interface ColumnSource {
  readonly x: GpuStorage;
  readonly rows: number;
  readonly width: number;
  readonly rowStride: number;
  readonly columnStride: number;
  readonly offset: number;
  readonly y?: GpuStorage;
  readonly rowScale?: GpuStorage;
  /** Rows per chunk of the first level (1: a strided copy, no sum). Default CHUNK_ROWS. */
  readonly chunkRows?: number;
}

/** out[c] = Σ_rows source[r, c] (or out[r, c] = source[r, c] with chunkRows 1), in a fixed order. */
export function columnSumsInto(rt: Runtime, source: ColumnSource, out: GpuStorage): void {
  const { width } = source;
  if (width === 0) return;
  if (source.rows === 0) {
    rt.clear(out);
    return;
  }
  let level = {
    x: source.x,
    y: source.y ?? rt.absent,
    rowScale: source.rowScale ?? rt.absent,
    rows: source.rows,
    chunkRows: source.chunkRows ?? CHUNK_ROWS,
    rowStride: source.rowStride,
    columnStride: source.columnStride,
    offset: source.offset,
    hasY: source.y ? 1 : 0,
    hasRowScale: source.rowScale ? 1 : 0,
  };
  const scratch: GpuStorage[] = [];
  try {
    for (;;) {
      const chunks = Math.ceil(level.rows / level.chunkRows);
      const last = chunks === 1 || level.chunkRows === 1;
      const target = last ? out : rt.allocate(chunks * width * 4, 'float32');
      if (!last) scratch.push(target);
      rt.dispatch(
        COLUMN_SUM,
        [level.x, level.y, level.rowScale, target],
        params().u(
          level.rows,
          width,
          level.chunkRows,
          chunks,
          level.rowStride,
          level.columnStride,
          level.offset,
          level.hasY,
          level.hasRowScale,
        ).words,
        elementGrid(chunks * width, COLUMN_THREADS),
      );
      if (last) return;
      level = {
        x: target,
        y: rt.absent,
        rowScale: rt.absent,
        rows: chunks,
        chunkRows: CHUNK_ROWS,
        rowStride: width,
        columnStride: 1,
        offset: 0,
        hasY: 0,
        hasRowScale: 0,
      };
    }
  } finally {
    for (const s of scratch) rt.free(s);
  }
}
