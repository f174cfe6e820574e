import { GradientError, recordingTape } from '../autograd/tape.js';
import { ArgumentError, ShapeError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertDType, assertFloat, kernelFor, wrapOutput } from './dispatch.js';
import { matmul } from './matmul.js';

export interface CrossEntropyOptions {
  /** Targets equal to this id (padding) add nothing. Default −100, as PyTorch. */
  ignoreIndex?: number;
  /** Multiplies the summed loss and its gradient; default 1 (a sum). 1/count gives the mean. */
  scale?: number;
}

/**
 * The language-modelling loss of logits [N, V] against int32 targets [N], fused with its gradient
 * (see CrossEntropyAttrs): returns the loss [1] (float32) and dLogits. The targets must lie in [0, V) or
 * equal ignoreIndex; the caller checks them on the host before upload (a kernel cannot throw).
 */
export function crossEntropyWithGradient(
  logits: Tensor,
  targets: Tensor,
  options: CrossEntropyOptions = {},
): { loss: Tensor; dLogits: Tensor } {
  const { backend, impl } = kernelFor('crossEntropy', [logits, targets]);
  assertFloat('crossEntropy logits', logits);
  assertDType('crossEntropy targets', targets, 'int32');
  if (logits.rank !== 2) throw new ShapeError('crossEntropy logits', '[N, V]', logits.shape);
  if (targets.rank !== 1 || targets.shape[0] !== logits.shape[0]) {
    throw new ShapeError('crossEntropy targets', `[${logits.shape[0]}]`, targets.shape);
  }
  const ignoreIndex = options.ignoreIndex ?? -100;
  const scale = options.scale ?? 1;
  if (!Number.isInteger(ignoreIndex)) throw new ArgumentError('crossEntropy ignoreIndex', 'an integer', ignoreIndex);
  if (!Number.isFinite(scale)) throw new ArgumentError('crossEntropy scale', 'a finite number', scale);
  const specs = {
    loss: { shape: [1], dtype: 'float32' as const },
    dLogits: { shape: logits.shape, dtype: logits.dtype },
  };
  const r = impl(logits, targets, { ignoreIndex, scale }, specs);
  return { loss: wrapOutput(backend, r.loss, specs.loss), dLogits: wrapOutput(backend, r.dLogits, specs.dLogits) };
}

/**
 * The loss alone, for use inside valueAndGrads: the gradient the kernel computed with it is saved and
 * becomes the rule (times the loss's own gradient, which is 1 when the loss is the value).
 */
export function crossEntropy(logits: Tensor, targets: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const { loss, dLogits } = crossEntropyWithGradient(logits, targets, options);
  const tape = recordingTape([logits]);
  if (tape) {
    const saved = tape.save(dLogits);
    tape.record('crossEntropy', [logits, targets], [loss], ([dLoss]) => {
      if (!dLoss) return [null, null];
      // The usual case: the loss is the value, its gradient the seed of ones, and dLogits is the answer.
      if (tape.seeds.has(dLoss)) return [saved, null];
      if (dLoss.dtype !== saved.dtype) {
        throw new GradientError('crossEntropy', `a ${saved.dtype} loss is differentiable only as the value itself`);
      }
      // The loss was used further: dLogits · dLoss, the [1] gradient broadcast by a matmul with K = 1.
      const [n, v] = saved.shape;
      return [matmul(saved.reshape([n * v, 1]), dLoss.reshape([1, 1])).reshape([n, v]), null];
    });
  }
  dLogits.dispose();
  return loss;
}
