/**
 * crossEntropy: the language-modelling loss fused with its gradient, one row of logits at a time:
 *   loss = scale · Σ_n (ln Σ_j e^(x_nj) − x_n,target),   dLogits_n = scale · (softmax(x_n) − onehot(target))
 * Rows whose target is ignoreIndex or outside [0, V) add nothing and get a zero gradient row. The row
 * maximum is subtracted before exp, so logits of ±1e4 neither overflow nor underflow the sum.
 */
import type { CrossEntropyAttrs, CrossEntropySpecs, TensorView } from '@diff-transformer/core';
import { floats, ints } from '../storage.js';

export function crossEntropy(
  logits: TensorView,
  targets: TensorView,
  attrs: CrossEntropyAttrs,
  _out: CrossEntropySpecs,
  outputs: { loss: Float32Array; dLogits: Float32Array },
): void {
  const x = floats(logits);
  const target = ints(targets);
  const [rows, vocab] = logits.shape;
  const { loss, dLogits } = outputs;
  // The sum over rows in doubles and in row order: the same bits on every call.
  let total = 0;
  for (let n = 0; n < rows; n++) {
    const offset = n * vocab;
    const t = target[n];
    if (t === attrs.ignoreIndex || t < 0 || t >= vocab) {
      dLogits.fill(0, offset, offset + vocab);
      continue;
    }
    const logSumExp = rowLogSumExp(x, offset, vocab);
    total += logSumExp - x[offset + t];
    for (let j = 0; j < vocab; j++) dLogits[offset + j] = attrs.scale * Math.exp(x[offset + j] - logSumExp);
    dLogits[offset + t] = attrs.scale * (Math.exp(x[offset + t] - logSumExp) - 1);
  }
  loss[0] = attrs.scale * total;
}

/** ln Σ_j e^(x_j) over one row, with the maximum taken out first. */
function rowLogSumExp(x: Float32Array, offset: number, width: number): number {
  let max = -Infinity;
  for (let j = 0; j < width; j++) if (x[offset + j] > max) max = x[offset + j];
  let sum = 0;
  for (let j = 0; j < width; j++) sum += Math.exp(x[offset + j] - max);
  return max + Math.log(sum);
}
