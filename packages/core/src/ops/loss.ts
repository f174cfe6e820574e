import type { CrossEntropyAttrs } from '../backend/kernels.js';
import { ArgumentError, ShapeError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertDType, assertFloat, wrapOutput } from './dispatch.js';
import { type ForwardCall, runOp, runWithoutGradient } from './run.js';

export interface CrossEntropyOptions {
  /** Targets equal to this id (padding) add nothing. Default −100, as PyTorch. */
  ignoreIndex?: number;
  /** Multiplies the summed loss and its gradient; default 1 (a sum). 1/count gives the mean. */
  scale?: number;
}

/**
 * The language-modelling loss of logits [N, V] against int32 targets [N], fused with its gradient
 * (see CrossEntropyAttrs): returns the loss [1] (float32) and dLogits. The targets must lie in [0, V) or
 * equal ignoreIndex; the caller checks them on the host before upload (a kernel cannot throw). It has
 * no gradient of its own (it returns one): inside valueAndGrads, use crossEntropy.
 */
export function crossEntropyWithGradient(
  logits: Tensor,
  targets: Tensor,
  options: CrossEntropyOptions = {},
): { loss: Tensor; dLogits: Tensor } {
  return runWithoutGradient('crossEntropyWithGradient', [logits, targets], ({ kernel }) =>
    lossAndGradient(kernel, logits, targets, crossEntropyAttrs(options)),
  );
}

/**
 * The loss alone, for use inside valueAndGrads: the gradient the kernel computes with it is saved, and
 * its rule hands it on (times the loss's own gradient).
 */
export function crossEntropy(logits: Tensor, targets: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const attrs = crossEntropyAttrs(options);
  return runOp('crossEntropy', [logits, targets], attrs, ({ kernel }) => {
    const { loss, dLogits } = lossAndGradient(kernel, logits, targets, attrs);
    return { y: loss, statistics: { dLogits } };
  });
}

function crossEntropyAttrs(options: CrossEntropyOptions): CrossEntropyAttrs {
  const ignoreIndex = options.ignoreIndex ?? -100;
  const scale = options.scale ?? 1;
  if (!Number.isInteger(ignoreIndex)) throw new ArgumentError('crossEntropy ignoreIndex', 'an integer', ignoreIndex);
  if (!Number.isFinite(scale)) throw new ArgumentError('crossEntropy scale', 'a finite number', scale);
  return { ignoreIndex, scale };
}

function lossAndGradient(
  kernel: ForwardCall['kernel'],
  logits: Tensor,
  targets: Tensor,
  attrs: CrossEntropyAttrs,
): { loss: Tensor; dLogits: Tensor } {
  const { backend, impl } = kernel('crossEntropy', [logits, targets]);
  assertFloat('crossEntropy logits', logits);
  assertDType('crossEntropy targets', targets, 'int32');
  if (logits.rank !== 2) throw new ShapeError('crossEntropy logits', '[N, V]', logits.shape);
  if (targets.rank !== 1 || targets.shape[0] !== logits.shape[0]) {
    throw new ShapeError('crossEntropy targets', `[${logits.shape[0]}]`, targets.shape);
  }
  const specs = {
    loss: { shape: [1], dtype: 'float32' as const },
    dLogits: { shape: logits.shape, dtype: logits.dtype },
  };
  const r = impl(logits, targets, attrs, specs);
  return { loss: wrapOutput(backend, r.loss, specs.loss), dLogits: wrapOutput(backend, r.dLogits, specs.dLogits) };
}
