/** SwiGLU feed-forward (Shazeer 2020), as in LLaMA and the paper: W_down·(silu(W_gate·x) ⊙ W_up·x). */
import { swiglu } from '../ops/elementwise.js';
import { linear } from '../ops/matmul.js';
import type { Tensor } from '../tensor/tensor.js';
import type { ParameterLookup } from './attention/module.js';

export class SwiGLUFeedForward {
  constructor(readonly param: ParameterLookup) {}

  forward(x: Tensor): Tensor {
    const hidden = swiglu(linear(x, this.param('gate_proj.weight')), linear(x, this.param('up_proj.weight')));
    return linear(hidden, this.param('down_proj.weight'));
  }
}
