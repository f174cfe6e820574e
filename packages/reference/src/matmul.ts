import type { MatmulAttrs } from '@diff-transformer/core';
import type { RefTensor } from './tensor.js';
import { elementCount, refZeros } from './tensor.js';

/**
 * a [...batch, M, K] · b [...batch, K, N] → [...batch, M, N] (MatmulAttrs): transposeA reads a as
 * [..., K, M], transposeB reads b as [..., N, K], and a b without batch dimensions is shared by every
 * batch entry of a. Triple loop, float64 accumulation.
 */
export function matmul(a: RefTensor, b: RefTensor, attrs: MatmulAttrs): RefTensor {
  const [aRows, aCols] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const m = attrs.transposeA ? aCols : aRows;
  const k = attrs.transposeA ? aRows : aCols;
  const n = attrs.transposeB ? bRows : bCols;
  if ((attrs.transposeB ? bCols : bRows) !== k) throw new Error('reference matmul: inner dimensions differ');
  const batchShape = a.shape.slice(0, -2);
  const batches = elementCount(batchShape);
  const bShared = b.shape.length === 2;
  const out = refZeros([...batchShape, m, n]);
  for (let batch = 0; batch < batches; batch++) {
    const aBase = batch * m * k;
    const bBase = bShared ? 0 : batch * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) {
          const aValue = a.data[aBase + (attrs.transposeA ? p * m + i : i * k + p)];
          const bValue = b.data[bBase + (attrs.transposeB ? j * k + p : p * n + j)];
          sum += aValue * bValue;
        }
        out.data[batch * m * n + i * n + j] = sum;
      }
    }
  }
  return out;
}

/** x [..., in] · weightᵀ with weight [out, in]: PyTorch's nn.Linear without bias. */
export function linear(x: RefTensor, weight: RefTensor): RefTensor {
  const inner = x.shape[x.shape.length - 1];
  const rows = elementCount(x.shape) / inner;
  const y = matmul({ shape: [rows, inner], data: x.data }, weight, { transposeA: false, transposeB: true });
  return { shape: [...x.shape.slice(0, -1), weight.shape[0]], data: y.data };
}

/**
 * The gradients of matmul for dy [...batch, M, N], element by element: ∂y[i, j]/∂A[i, p] = B[p, j] and
 * ∂y[i, j]/∂B[p, j] = A[i, p] (A = op(a), B = op(b)), written back at each operand's stored position;
 * a shared b collects the sum over the batch.
 */
export function matmulBackward(
  a: RefTensor,
  b: RefTensor,
  dy: RefTensor,
  attrs: MatmulAttrs,
): { dA: RefTensor; dB: RefTensor } {
  const [aRows, aCols] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const m = attrs.transposeA ? aCols : aRows;
  const k = attrs.transposeA ? aRows : aCols;
  const n = attrs.transposeB ? bRows : bCols;
  const batches = elementCount(a.shape.slice(0, -2));
  const bShared = b.shape.length === 2;
  const dA = refZeros(a.shape);
  const dB = refZeros(b.shape);
  for (let batch = 0; batch < batches; batch++) {
    const aBase = batch * m * k;
    const bBase = bShared ? 0 : batch * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        const d = dy.data[batch * m * n + i * n + j];
        for (let p = 0; p < k; p++) {
          const aAt = aBase + (attrs.transposeA ? p * m + i : i * k + p);
          const bAt = bBase + (attrs.transposeB ? j * k + p : p * n + j);
          dA.data[aAt] += d * b.data[bAt];
          dB.data[bAt] += d * a.data[aAt];
        }
      }
    }
  }
  return { dA, dB };
}
