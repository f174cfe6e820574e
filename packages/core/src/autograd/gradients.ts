/**
 * The gradient table: every op of ops/ and its rule, or the reason it has none (tfjs's `*_grad.ts`
 * GradConfigs, tinygrad's gradient.py pattern table, in one file). A rule names what it saves; the run
 * path (ops/run.ts) holds those tensors from the op's run until the rule has run, then frees them.
 * Rules run with no tape active, through the same ops, so the kernels they call are the backends' own.
 */
import type { MatmulAttrs, NarrowAttrs } from '../backend/kernels.js';
import { GradientError } from '../errors.js';
import { attentionBackward, diffAttentionBackward } from '../ops/attention.js';
import { mul, scale, swigluBackward } from '../ops/elementwise.js';
import { embeddingBackward } from '../ops/embedding.js';
import { matmul } from '../ops/matmul.js';
import { cacheWrite, reshape } from '../ops/memory.js';
import { rmsNormBackward } from '../ops/normalization.js';
import { rotary } from '../ops/rotary.js';
import { zeros } from '../tensor/create.js';
import { sizeOf } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { type GradientTable, gradientRule } from './gradient-table.js';

const A_BACKWARD = 'it is a gradient rule’s kernel: second derivatives are not implemented';

export const GRADIENTS: GradientTable = {
  // Elementwise: y = a + b, a·b, eˣ, σ(x), αx + β, silu(gate)·up.
  add: gradientRule({
    inputs: ['a', 'b'],
    save: [],
    backward: (dy) => ({ a: dy, b: dy }),
  }),
  mul: gradientRule({
    inputs: ['a', 'b'],
    save: ['a', 'b'],
    backward: (dy, { a, b }) => ({ a: mul(dy, b), b: mul(dy, a) }),
  }),
  exp: gradientRule({
    inputs: ['x'],
    save: ['y'],
    backward: (dy, { y }) => ({ x: mul(dy, y) }),
  }),
  sigmoid: gradientRule({
    inputs: ['x'],
    save: ['y'],
    // σ' = σ·(1 − σ), from the output alone.
    backward: (dy, { y }) => ({ x: mul(dy, mul(y, scale(y, -1, 1))) }),
  }),
  scale: gradientRule({
    inputs: ['x'],
    save: [],
    backward: (dy, _, { alpha }) => ({ x: scale(dy, alpha, 0) }),
  }),
  swiglu: gradientRule({
    inputs: ['gate', 'up'],
    save: ['gate', 'up'],
    backward: (dy, { gate, up }) => {
      const { dGate, dUp } = swigluBackward(gate, up, dy);
      return { gate: dGate, up: dUp };
    },
  }),

  matmul: gradientRule({
    inputs: ['a', 'b'],
    save: ['a', 'b'],
    backward: (dy, { a, b }, attrs) => matmulGradients(a, b, dy, attrs),
  }),

  // Views and copies: the gradient goes back to the input's shape, or into its slice of zeros.
  reshape: gradientRule({
    inputs: ['x'],
    save: [],
    backward: (dy, _, __, { shapes }) => ({ x: reshape(dy, shapes.x) }),
  }),
  narrow: gradientRule({
    inputs: ['x'],
    save: [],
    backward: (dy, _, attrs, { shapes }) => ({ x: narrowGradient(shapes.x, attrs, dy) }),
  }),

  // A scatter-add of dy into the rows the ids picked.
  embedding: gradientRule({
    inputs: ['table', 'ids'],
    constant: ['ids'],
    save: ['ids'],
    backward: (dy, { ids }, _, { shapes }) => ({ table: embeddingBackward(ids, dy, shapes.table[0]) }),
  }),
  rmsNorm: gradientRule({
    inputs: ['x', 'weight'],
    optional: ['weight'],
    save: ['x', 'weight'],
    backward: (dy, { x, weight }, { eps }) => {
      const { dx, dWeight } = rmsNormBackward(x, weight, dy, eps);
      return { x: dx, weight: dWeight };
    },
  }),
  // The rotation is orthogonal: its gradient is the inverse rotation, the same kernel with −sin. The
  // tables are constants of the model.
  rotary: gradientRule({
    inputs: ['x', 'cos', 'sin'],
    constant: ['cos', 'sin'],
    save: ['cos', 'sin'],
    backward: (dy, { cos, sin }, attrs) => ({ x: rotary(dy, cos, scale(sin, -1, 0), attrs) }),
  }),

  // FlashAttention-2: the forward saves each row's log-sum-exp (and, differential, each map's output);
  // the backward kernel recomputes the probabilities tile by tile from q and k.
  attention: gradientRule({
    inputs: ['q', 'k', 'v'],
    save: ['q', 'k', 'v', 'y', 'logSumExp'],
    backward: (dy, { q, k, v, y, logSumExp }, attrs) => {
      const g = attentionBackward(q, k, v, y, logSumExp, dy, attrs);
      return { q: g.dq, k: g.dk, v: g.dv };
    },
  }),
  diffAttention: gradientRule({
    inputs: ['q', 'k', 'v', 'lambda', 'normWeight'],
    optional: ['normWeight'],
    save: ['q', 'k', 'v', 'lambda', 'normWeight', 'logSumExp', 'mapOutputs'],
    backward: (dy, { q, k, v, lambda, normWeight, logSumExp, mapOutputs }, attrs) => {
      const norm = attrs.norm && { ...attrs.norm, weight: normWeight };
      const g = diffAttentionBackward(q, k, v, lambda, { logSumExp, mapOutputs }, dy, { ...attrs, norm });
      return { q: g.dq, k: g.dk, v: g.dv, lambda: g.dLambda, normWeight: g.dNormWeight };
    },
  }),

  // The kernel computes dLogits with the loss; the rule scales it by the loss's own gradient.
  crossEntropy: gradientRule({
    inputs: ['logits', 'targets'],
    constant: ['targets'],
    save: ['dLogits'],
    backward: (dLoss, { dLogits }, _, { isOnes }) => {
      // The usual case, the loss is the value: handing dLogits on spares a second [N, V] tensor.
      if (isOnes(dLoss)) return { logits: dLogits };
      if (dLoss.dtype !== dLogits.dtype) {
        throw new GradientError('crossEntropy', `a ${dLogits.dtype} loss is differentiable only as the value itself`);
      }
      // dLogits · dLoss: the [1] gradient broadcast by a matmul with K = 1.
      const [n, v] = dLogits.shape;
      const column = matmul(reshape(dLogits, [n * v, 1]), reshape(dLoss, [1, 1]));
      return { logits: reshape(column, [n, v]) };
    },
  }),

  crossEntropyWithGradient: { noGradient: 'it returns its own gradient; inside valueAndGrads use crossEntropy' },
  softmax: { noGradient: 'it serves sampling; train through crossEntropy' },
  argmax: { noGradient: 'its int32 output is piecewise constant' },
  sumSquares: { noGradient: 'it measures gradients for clipping' },
  swigluBackward: { noGradient: A_BACKWARD },
  rmsNormBackward: { noGradient: A_BACKWARD },
  embeddingBackward: { noGradient: A_BACKWARD },
  attentionWithStatistics: { noGradient: 'its statistics are what attention’s rule saves; differentiate attention' },
  diffAttentionWithStatistics: {
    noGradient: 'its statistics are what diffAttention’s rule saves; differentiate diffAttention',
  },
  attentionBackward: { noGradient: A_BACKWARD },
  diffAttentionBackward: { noGradient: A_BACKWARD },
  cacheWrite: { noGradient: 'it writes a tensor in place' },
  adamw: { noGradient: 'it updates parameters in place' },
};

/**
 * The gradient rule of matmul. With A = op(a) [M, K], B = op(b) [K, N] and dY [M, N]:
 * dA = dY·Bᵀ and dB = Aᵀ·dY, each produced directly in its operand's stored layout by choosing the
 * transposes. A b shared by the batch gets the sum over the batch: one matmul over batch·M rows.
 */
function matmulGradients(a: Tensor, b: Tensor, dy: Tensor, attrs: MatmulAttrs): { a: Tensor; b: Tensor } {
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
    const a2 = reshape(a, [-1, a.shape[a.rank - 1]]);
    const dy2 = reshape(dy, [-1, dy.shape[dy.rank - 1]]);
    db = tB ? matmul(dy2, a2, { transposeA: true }) : matmul(a2, dy2, { transposeA: true });
  } else {
    db = tB ? matmul(dy, a, { transposeA: true, transposeB: tA }) : matmul(a, dy, { transposeA: !tA });
  }
  return { a: da, b: db };
}

/**
 * The gradient of narrow: zeros of the input's shape with dy written at [start, start + length) of the
 * axis. Viewed as [outer, axis, inner], that is cacheWrite's own layout (rows along dimension 1).
 */
function narrowGradient(shape: readonly number[], { axis, start }: NarrowAttrs, dy: Tensor): Tensor {
  const outer = sizeOf(shape.slice(0, axis));
  const inner = sizeOf(shape.slice(axis + 1));
  const dx = zeros(shape, { backend: dy.backend, dtype: dy.dtype });
  cacheWrite(reshape(dx, [outer, shape[axis], inner]), reshape(dy, [outer, dy.shape[axis], inner]), start);
  return dx;
}
