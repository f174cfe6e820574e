import type { CrossEntropyAttrs } from '@diff-transformer/core';
import type { RefTensor } from './tensor.js';
import { refZeros } from './tensor.js';

/**
 * Cross-entropy of logits [N, V] against targets [N]: loss = scale · Σ_n (logsumexp(row n) − row_n[t_n])
 * and its gradient scale · (softmax(row n) − onehot(t_n)); rows whose target is ignoreIndex or outside
 * [0, V) count for nothing.
 */
export function crossEntropy(
  logits: RefTensor,
  targets: RefTensor,
  attrs: CrossEntropyAttrs,
): { loss: RefTensor; dLogits: RefTensor } {
  const [rows, vocab] = logits.shape;
  const dLogits = refZeros(logits.shape);
  let loss = 0;
  for (let n = 0; n < rows; n++) {
    const target = targets.data[n];
    if (target === attrs.ignoreIndex || target < 0 || target >= vocab) continue;
    const row = logits.data.subarray(n * vocab, (n + 1) * vocab);
    const max = Math.max(...row);
    let total = 0;
    for (const v of row) total += Math.exp(v - max);
    const logSumExp = max + Math.log(total);
    loss += logSumExp - row[target];
    for (let j = 0; j < vocab; j++) {
      dLogits.data[n * vocab + j] = attrs.scale * (Math.exp(row[j] - logSumExp) - (j === target ? 1 : 0));
    }
  }
  return { loss: { shape: [1], data: Float64Array.of(attrs.scale * loss) }, dLogits };
}
