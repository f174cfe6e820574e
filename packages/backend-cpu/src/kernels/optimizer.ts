/**
 * adamw: one AdamW step in place (Loshchilov & Hutter 2019, as torch.optim.AdamW) on param and its
 * float32 moments m and v, in doubles per element. The bias corrections 1 − β1ᵗ and 1 − β2ᵗ are
 * computed once, in float64, as the contract asks.
 */
import type { AdamWAttrs, TensorView } from '@diff-transformer/core';
import { floats } from '../storage.js';

export function adamw(param: TensorView, grad: TensorView, m: TensorView, v: TensorView, attrs: AdamWAttrs): void {
  const p = floats(param);
  const g = floats(grad);
  const first = floats(m);
  const second = floats(v);
  const { learningRate, beta1, beta2, eps, weightDecay, step, gradScale } = attrs;
  const stepSize = learningRate / (1 - beta1 ** step);
  const inverseRootCorrection2 = 1 / Math.sqrt(1 - beta2 ** step);
  const decay = 1 - learningRate * weightDecay;
  for (let i = 0; i < p.length; i++) {
    const gi = gradScale * g[i];
    const mi = beta1 * first[i] + (1 - beta1) * gi;
    const vi = beta2 * second[i] + (1 - beta2) * gi * gi;
    first[i] = mi;
    second[i] = vi;
    p[i] = p[i] * decay - (stepSize * mi) / (Math.sqrt(vi) * inverseRootCorrection2 + eps);
  }
}
