/**
 * matmul: batched a [...batch, M, K] · b [...batch, K, N] → [...batch, M, N], with either operand
 * stored transposed, and b shared by every batch entry when it has no batch dimensions (a weight).
 *
 * Two loop forms, both reading memory contiguously in their innermost loop:
 *   - dot form (b transposed, PyTorch's Linear layout [N, K]): out[i, j] = a_i · b_j, both rows contiguous.
 *     Four columns at a time share each load of a[i, p] and give four independent sums.
 *   - axpy form (b not transposed): out[i, :] += a[i, p] · b[p, :] in i-k-j order, four values of p at a
 *     time so the accumulator row is loaded and stored once per four rows of b.
 * Both tile over the columns of out so a tile of b stays in cache while every row of a passes over it.
 * Sums are accumulated in doubles (JS numbers) and rounded to float32 once.
 */
import { matmulDims, type MatmulAttrs, type OutputSpec, type TensorView } from '@diff-transformer/core';
import { floats } from '../storage.js';
import { dot } from './dot.js';

/** About 256 KiB of float32 b kept hot per column tile. */
const TILE_ELEMENTS = 64 * 1024;

export function matmul(a: TensorView, b: TensorView, attrs: MatmulAttrs, out: OutputSpec, C: Float32Array): void {
  const A = floats(a);
  const B = floats(b);
  const { batches, m, n, k, sharedB: bShared } = matmulDims(a, b, attrs, out);
  if (m === 0 || n === 0) return;
  // An empty inner dimension is a zero product (the output may hold anything before).
  if (k === 0) {
    C.fill(0);
    return;
  }

  // a transposed too: transpose each batch entry once into scratch, then run the dot form.
  const aRows = attrs.transposeA && attrs.transposeB ? new Float32Array(m * k) : null;
  // A single row of a reuses nothing, so it takes whole rows of b; otherwise tiles at least 256 wide keep
  // the innermost loop long.
  const axpyTile = m === 1 ? n : Math.min(n, Math.max(256, columnTile(k, n)));
  const accumulator = attrs.transposeB ? null : new Float64Array(axpyTile);

  for (let batch = 0; batch < batches; batch++) {
    const aOffset = batch * m * k;
    const bOffset = bShared ? 0 : batch * k * n;
    const cOffset = batch * m * n;
    if (attrs.transposeB) {
      if (aRows) {
        transposeInto(A, aOffset, k, m, aRows);
        multiplyDot(aRows, 0, B, bOffset, C, cOffset, m, n, k);
      } else {
        multiplyDot(A, aOffset, B, bOffset, C, cOffset, m, n, k);
      }
    } else if (attrs.transposeA) {
      // a stored [K, M]: element (i, p) is at p·M + i.
      multiplyAxpy(A, aOffset, 1, m, B, bOffset, C, cOffset, m, n, k, accumulator!);
    } else {
      multiplyAxpy(A, aOffset, k, 1, B, bOffset, C, cOffset, m, n, k, accumulator!);
    }
  }
}

/** Columns of out per tile, a multiple of 4, so that K × tile elements of b fit the cache budget. */
function columnTile(k: number, n: number): number {
  const tile = Math.max(16, Math.floor(TILE_ELEMENTS / k) & ~3);
  return Math.min(tile, n);
}

/**
 * C[i, j] = Σ_p A[i, p] · B[j, p], with A [M, K] and B [N, K] row-major. Two rows of A by four rows of
 * B at a time: eight independent sums from six loads per step of p.
 */
function multiplyDot(
  A: Float32Array,
  aOffset: number,
  B: Float32Array,
  bOffset: number,
  C: Float32Array,
  cOffset: number,
  m: number,
  n: number,
  k: number,
): void {
  const tile = columnTile(k, n);
  for (let j0 = 0; j0 < n; j0 += tile) {
    const j1 = Math.min(n, j0 + tile);
    let i = 0;
    for (; i + 2 <= m; i += 2) {
      const a0 = aOffset + i * k;
      const a1 = a0 + k;
      const c0 = cOffset + i * n;
      const c1 = c0 + n;
      let j = j0;
      for (; j + 4 <= j1; j += 4) {
        const b0 = bOffset + j * k;
        const b1 = b0 + k;
        const b2 = b1 + k;
        const b3 = b2 + k;
        let s00 = 0;
        let s01 = 0;
        let s02 = 0;
        let s03 = 0;
        let s10 = 0;
        let s11 = 0;
        let s12 = 0;
        let s13 = 0;
        for (let p = 0; p < k; p++) {
          const x = A[a0 + p];
          const y = A[a1 + p];
          const w0 = B[b0 + p];
          const w1 = B[b1 + p];
          const w2 = B[b2 + p];
          const w3 = B[b3 + p];
          s00 += x * w0;
          s01 += x * w1;
          s02 += x * w2;
          s03 += x * w3;
          s10 += y * w0;
          s11 += y * w1;
          s12 += y * w2;
          s13 += y * w3;
        }
        C[c0 + j] = s00;
        C[c0 + j + 1] = s01;
        C[c0 + j + 2] = s02;
        C[c0 + j + 3] = s03;
        C[c1 + j] = s10;
        C[c1 + j + 1] = s11;
        C[c1 + j + 2] = s12;
        C[c1 + j + 3] = s13;
      }
      for (; j < j1; j++) {
        C[c0 + j] = dot(A, a0, B, bOffset + j * k, k);
        C[c1 + j] = dot(A, a1, B, bOffset + j * k, k);
      }
    }
    if (i < m) {
      // The last row of an odd M: one row by four.
      const a0 = aOffset + i * k;
      const c0 = cOffset + i * n;
      let j = j0;
      for (; j + 4 <= j1; j += 4) {
        const b0 = bOffset + j * k;
        const b1 = b0 + k;
        const b2 = b1 + k;
        const b3 = b2 + k;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let p = 0; p < k; p++) {
          const x = A[a0 + p];
          s0 += x * B[b0 + p];
          s1 += x * B[b1 + p];
          s2 += x * B[b2 + p];
          s3 += x * B[b3 + p];
        }
        C[c0 + j] = s0;
        C[c0 + j + 1] = s1;
        C[c0 + j + 2] = s2;
        C[c0 + j + 3] = s3;
      }
      for (; j < j1; j++) C[c0 + j] = dot(A, a0, B, bOffset + j * k, k);
    }
  }
}

/**
 * C[i, j] = Σ_p A(i, p) · B[p, j] with B [K, N] row-major and A(i, p) at aOffset + i·rowStride +
 * p·colStride (so one routine serves a as stored and a transposed). `accumulator` holds one tile of
 * an output row in doubles.
 */
function multiplyAxpy(
  A: Float32Array,
  aOffset: number,
  rowStride: number,
  colStride: number,
  B: Float32Array,
  bOffset: number,
  C: Float32Array,
  cOffset: number,
  m: number,
  n: number,
  k: number,
  accumulator: Float64Array,
): void {
  const tile = accumulator.length;
  for (let j0 = 0; j0 < n; j0 += tile) {
    const width = Math.min(tile, n - j0);
    for (let i = 0; i < m; i++) {
      const aRow = aOffset + i * rowStride;
      accumulator.fill(0, 0, width);
      let p = 0;
      for (; p + 4 <= k; p += 4) {
        const x0 = A[aRow + p * colStride];
        const x1 = A[aRow + (p + 1) * colStride];
        const x2 = A[aRow + (p + 2) * colStride];
        const x3 = A[aRow + (p + 3) * colStride];
        const r0 = bOffset + p * n + j0;
        const r1 = r0 + n;
        const r2 = r1 + n;
        const r3 = r2 + n;
        for (let j = 0; j < width; j++) {
          accumulator[j] += x0 * B[r0 + j] + x1 * B[r1 + j] + x2 * B[r2 + j] + x3 * B[r3 + j];
        }
      }
      for (; p < k; p++) {
        const x = A[aRow + p * colStride];
        const r = bOffset + p * n + j0;
        for (let j = 0; j < width; j++) accumulator[j] += x * B[r + j];
      }
      const c0 = cOffset + i * n + j0;
      for (let j = 0; j < width; j++) C[c0 + j] = accumulator[j];
    }
  }
}

/** into[i, p] = A[p, i] for A [rows, cols] at aOffset: into is [cols, rows]. */
function transposeInto(A: Float32Array, aOffset: number, rows: number, cols: number, into: Float32Array): void {
  for (let p = 0; p < rows; p++) {
    const row = aOffset + p * cols;
    for (let i = 0; i < cols; i++) into[i * rows + p] = A[row + i];
  }
}
