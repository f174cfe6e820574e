import type { AdamWAttrs } from '@diff-transformer/core';
import type { RefTensor } from './tensor.js';

/**
 * One AdamW step as torch.optim.AdamW (decoupled weight decay, bias-corrected moments), returning the
 * new parameter and moments.
 */
export function adamw(
  param: RefTensor,
  grad: RefTensor,
  m: RefTensor,
  v: RefTensor,
  attrs: AdamWAttrs,
): { param: RefTensor; m: RefTensor; v: RefTensor } {
  const { learningRate: lr, beta1, beta2, eps, weightDecay, step, gradScale } = attrs;
  const correction1 = 1 - beta1 ** step;
  const correction2 = 1 - beta2 ** step;
  const p = Float64Array.from(param.data);
  const m2 = Float64Array.from(m.data);
  const v2 = Float64Array.from(v.data);
  for (let i = 0; i < p.length; i++) {
    const g = gradScale * grad.data[i];
    m2[i] = beta1 * m2[i] + (1 - beta1) * g;
    v2[i] = beta2 * v2[i] + (1 - beta2) * g * g;
    p[i] *= 1 - lr * weightDecay;
    p[i] -= (lr / correction1) * (m2[i] / (Math.sqrt(v2[i]) / Math.sqrt(correction2) + eps));
  }
  return {
    param: { shape: [...param.shape], data: p },
    m: { shape: [...m.shape], data: m2 },
    v: { shape: [...v.shape], data: v2 },
  };
}
