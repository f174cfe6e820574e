import type { RotaryLayout } from '../../backend/kernels.js';
import { linear } from '../../ops/matmul.js';
import { reshape } from '../../ops/memory.js';
import { rotary } from '../../ops/rotary.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { AttentionContext } from './module.js';

/** x·Wᵀ viewed as heads: x [B, T, E], weight [heads·width, E] → [B, T, heads, width]. */
export function projectHeads(x: Tensor, weight: Tensor, heads: number, width: number): Tensor {
  const [b, t] = x.shape;
  return reshape(linear(x, weight), [b, t, heads, width]);
}

/** Rotary embedding of heads [B, T, n, d] at their absolute positions (the context's offset onward). */
export function rotateHeads(heads: Tensor, context: AttentionContext, layout: RotaryLayout): Tensor {
  const { cos, sin, positionOffset } = context.rope.forPositions(context.positionOffset, heads.shape[1]);
  return rotary(heads, cos, sin, { layout, positionOffset });
}
