/**
 * One decoder layer, pre-RMSNorm (LLaMA style, as the paper):
 *   Y = X + MultiHead(RMSNorm(X));  X' = Y + SwiGLU(RMSNorm(Y))
 */
import { add } from '../ops/elementwise.js';
import { rmsNorm } from '../ops/normalization.js';
import type { Tensor } from '../tensor/tensor.js';
import type { AttentionContext, AttentionModule, ParameterLookup } from './attention/module.js';
import type { SwiGLUFeedForward } from './feed-forward.js';

export class DecoderBlock {
  constructor(
    readonly attention: AttentionModule,
    readonly feedForward: SwiGLUFeedForward,
    readonly param: ParameterLookup,
    readonly normEps: number,
  ) {}

  forward(x: Tensor, context: AttentionContext): Tensor {
    const y = add(x, this.attention.forward(rmsNorm(x, this.param('attn_norm.weight'), this.normEps), context));
    return add(y, this.feedForward.forward(rmsNorm(y, this.param('ffn_norm.weight'), this.normEps)));
  }
}
