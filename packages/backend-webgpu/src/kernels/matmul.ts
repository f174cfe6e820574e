/** matmul: batched, either operand transposed, b shared as a weight; see ../shaders/matmul.ts. */
import { matmulDims, type MatmulAttrs, type OutputSpec, type TensorView } from '@diff-transformer/core';
import type { Runtime } from '../device/runtime.js';
import type { GpuStorage } from '../device/storage.js';
import { params } from '../shaders/common.js';
import {
  GEMV_COLUMNS,
  GEMV_MAX_ROWS,
  gemvProgram,
  matmulProgram,
  tileFor,
  type MatmulTile,
} from '../shaders/matmul.js';
import { outputFor, storageOf } from './storage.js';

/**
 * `tile` forces a tile (tests); otherwise the product's size picks one, `large` being the tile for
 * large products.
 */
export function matmul(
  rt: Runtime,
  a: TensorView,
  b: TensorView,
  attrs: MatmulAttrs,
  out: OutputSpec,
  tile?: MatmulTile,
  large?: MatmulTile,
): GpuStorage {
  const y = outputFor(rt, out);
  const { batches, m, n, k, sharedB: shared } = matmulDims(a, b, attrs, out);
  if (m === 0 || n === 0 || batches === 0) return y;
  if (k === 0) {
    // An empty sum: c is zero. No dispatch reads a or b.
    rt.clear(y);
    return y;
  }
  // The batch goes on z, which allows 65 535 workgroups: far more batch entries than any model has.
  if (batches > 65535)
    throw new RangeError(`matmul: ${batches} batch entries; the WebGPU backend supports at most 65535`);
  const p = params().u(m, n, k, m * k, shared ? 0 : k * n, m * n);
  if (!tile && m <= GEMV_MAX_ROWS && attrs.transposeB && !attrs.transposeA) {
    // Decoding through a Linear layer: a few rows against a weight stored [N, K].
    rt.dispatch(gemvProgram(m), [storageOf(a), storageOf(b), y], p.words, [Math.ceil(n / GEMV_COLUMNS), 1, batches]);
    return y;
  }
  const chosen = tile ?? tileFor(m, n, large);
  const program = matmulProgram(attrs.transposeA, attrs.transposeB, chosen);
  const bm = chosen.wgy * chosen.tm;
  const bn = chosen.wgx * chosen.tn;
  rt.dispatch(program, [storageOf(a), storageOf(b), y], p.words, [Math.ceil(n / bn), Math.ceil(m / bm), batches]);
  return y;
}
