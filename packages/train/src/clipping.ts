/**
 * Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_): the L2 norm over every gradient
 * together, and the factor that brings it down to `maxNorm`. The squares are summed on the device
 * (one sumSquares per gradient, added up in the parameters' order, so the sum is the same bits every
 * run) and one number is read back.
 */
import { ops, tidy, type Tensor } from '@diff-transformer/core';

/** √(Σ over every gradient of Σ g²), times `scale` (1/micro-batches when the gradients are sums). */
export async function globalGradNorm(grads: ReadonlyMap<string, Tensor>, scale = 1): Promise<number> {
  const total = tidy(() => {
    let sum: Tensor | null = null;
    for (const g of grads.values()) {
      const squares = ops.sumSquares(g);
      sum = sum ? ops.add(sum, squares) : squares;
    }
    return sum;
  });
  if (!total) return 0;
  try {
    const [sumOfSquares] = await total.data();
    return Math.sqrt(sumOfSquares) * scale;
  } finally {
    total.dispose();
  }
}

/**
 * The factor that clips a gradient of norm `norm` to at most `maxNorm` (1 when it is within, or when
 * clipping is off: maxNorm 0 or Infinity). A non-finite norm gives NaN: the step must not be taken.
 */
export function clipFactor(norm: number, maxNorm: number): number {
  if (!Number.isFinite(norm)) return Number.NaN;
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) return 1;
  // torch's clip_grad_norm_ adds 1e-6 to the norm the same way.
  return Math.min(1, maxNorm / (norm + 1e-6));
}
