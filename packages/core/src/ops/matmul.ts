import type { MatmulAttrs } from '../backend/kernels.js';
import { GradientError, recordingTape } from '../autograd/tape.js';
import { ShapeError, formatShape } from '../errors.js';
import { shapesEqual } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertFloat, assertSameDType, kernelFor, wrapOutput } from './dispatch.js';

/**
 * Batched matrix product a [...batch, M, K] · b [...batch, K, N] → [...batch, M, N]; see MatmulAttrs
 * for the transposed layouts. b may be a plain matrix shared by every batch entry.
 */
export function matmul(a: Tensor, b: Tensor, options: Partial<MatmulAttrs> = {}): Tensor {
  const attrs: MatmulAttrs = { transposeA: options.transposeA ?? false, transposeB: options.transposeB ?? false };
  const { backend, impl } = kernelFor('matmul', [a, b]);
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
  const y = wrapOutput(backend, impl(a, b, attrs, out), out);
  const tape = recordingTape([a, b]);
  if (tape) {
    const [sa, sb] = [tape.save(a), tape.save(b)];
    tape.record('matmul', [a, b], [y], ([dy]) => (dy ? matmulGradients(sa, sb, dy, attrs) : [null, null]));
  }
  return y;
}

/**
 * The gradient rule of matmul. With A = op(a) [M, K], B = op(b) [K, N] and dY [M, N]:
 * dA = dY·Bᵀ and dB = Aᵀ·dY, each produced directly in its operand's stored layout by choosing the
 * transposes. A b shared by the batch gets the sum over the batch: one matmul over batch·M rows.
 */
function matmulGradients(a: Tensor, b: Tensor, dy: Tensor, attrs: MatmulAttrs): [Tensor, Tensor] {
  const { transposeA: tA, transposeB: tB } = attrs;
  const sharedB = b.rank === 2 && a.rank > 2;
  // da: [M, K] = dY·Bᵀ, or stored transposed [K, M] = B·dYᵀ.
  let da: Tensor;
  if (!tA) da = matmul(dy, b, { transposeB: !tB });
  else if (!sharedB) da = matmul(b, dy, { transposeA: tB, transposeB: true });
  else {
    throw new GradientError(
      'matmul',
      'no gradient for a transposed batched a with a shared b; reshape a to 2-D or give b a batch',
    );
  }
  // db: [K, N] = Aᵀ·dY, or stored transposed [N, K] = dYᵀ·A.
  let db: Tensor;
  if (sharedB) {
    // Every batch entry's rows stacked: a [batch·M, K], dY [batch·M, N].
    const a2 = a.reshape([-1, a.shape[a.rank - 1]]);
    const dy2 = dy.reshape([-1, dy.shape[dy.rank - 1]]);
    db = tB ? matmul(dy2, a2, { transposeA: true }) : matmul(a2, dy2, { transposeA: true });
  } else {
    db = tB ? matmul(dy, a, { transposeA: true, transposeB: tA }) : matmul(a, dy, { transposeA: !tA });
  }
  return [da, db];
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
  const flat = x.reshape([-1, x.shape[x.rank - 1]]);
  try {
    const y = matmul(flat, weight, { transposeB: true });
    const shaped = y.reshape([...x.shape.slice(0, -1), weight.shape[0]]);
    y.dispose();
    return shaped;
  } finally {
    flat.dispose();
  }
}
