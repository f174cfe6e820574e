import type { MatmulAttrs } from '../backend/kernels.js';
import { ShapeError, formatShape } from '../errors.js';
import { shapesEqual } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertFloat, assertSameDType, wrapOutput } from './dispatch.js';
import { reshape } from './memory.js';
import { runOp } from './run.js';

/**
 * Batched matrix product a [...batch, M, K] · b [...batch, K, N] → [...batch, M, N]; see MatmulAttrs
 * for the transposed layouts. b may be a plain matrix shared by every batch entry.
 */
export function matmul(a: Tensor, b: Tensor, options: Partial<MatmulAttrs> = {}): Tensor {
  const attrs: MatmulAttrs = { transposeA: options.transposeA ?? false, transposeB: options.transposeB ?? false };
  return runOp('matmul', [a, b], attrs, ({ kernel }) => {
    const { backend, impl } = kernel('matmul');
    assertFloat('matmul a', a);
    assertSameDType('matmul b', a, b);
    if (a.rank < 2) throw new ShapeError('matmul a', '[...batch, M, K]', a.shape, 'rank ≥ 2 expected');
    if (b.rank < 2) throw new ShapeError('matmul b', '[...batch, K, N]', b.shape, 'rank ≥ 2 expected');
    const [ar, ac] = a.shape.slice(-2);
    const [br, bc] = b.shape.slice(-2);
    const m = attrs.transposeA ? ac : ar;
    const kA = attrs.transposeA ? ar : ac;
    const kB = attrs.transposeB ? bc : br;
    const n = attrs.transposeB ? br : bc;
    const batchA = a.shape.slice(0, -2);
    const batchB = b.shape.slice(0, -2);
    if (kA !== kB) {
      throw new ShapeError(
        'matmul b',
        attrs.transposeB ? `[..., N, ${kA}]` : `[..., ${kA}, N]`,
        b.shape,
        `inner dimensions differ: a is ${formatShape(a.shape)}${attrs.transposeA ? ' (transposed)' : ''}`,
      );
    }
    if (batchB.length > 0 && !shapesEqual(batchA, batchB)) {
      throw new ShapeError('matmul b', `batch ${formatShape(batchA)} or none`, b.shape, `a is ${formatShape(a.shape)}`);
    }
    const out = { shape: [...batchA, m, n], dtype: a.dtype };
    return { y: wrapOutput(backend, impl(a, b, attrs, out), out) };
  });
}

/** x [..., in] · weightᵀ with weight [out, in] (PyTorch's nn.Linear layout, no bias) → [..., out]. */
export function linear(x: Tensor, weight: Tensor): Tensor {
  if (weight.rank !== 2) throw new ShapeError('linear weight', '[out, in]', weight.shape);
  if (x.shape[x.rank - 1] !== weight.shape[1]) {
    throw new ShapeError(
      'linear weight',
      `[out, ${x.shape[x.rank - 1]}]`,
      weight.shape,
      `input is ${formatShape(x.shape)}`,
    );
  }
  if (x.rank === 2) return matmul(x, weight, { transposeB: true });
  // One matmul over every row of the batch: the weight's gradient is then one matmul over B·T rows too.
  const flat = reshape(x, [-1, x.shape[x.rank - 1]]);
  try {
    const y = matmul(flat, weight, { transposeB: true });
    const shaped = reshape(y, [...x.shape.slice(0, -1), weight.shape[0]]);
    y.dispose();
    return shaped;
  } finally {
    flat.dispose();
  }
}
