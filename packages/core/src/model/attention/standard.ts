/**
 * Standard multi-head (GQA) softmax attention with rotary positions: the baseline Transformer the
 * paper compares against, everything else in the block equal.
 */
import { attention } from '../../ops/attention.js';
import { linear } from '../../ops/matmul.js';
import { reshape } from '../../ops/memory.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { ModelConfig } from '../config.js';
import { keysAndValues } from './kv.js';
import { projectHeads, rotateHeads } from './projections.js';
import type { AttentionContext, AttentionModule, ParameterLookup } from './module.js';

export class StandardAttention implements AttentionModule {
  constructor(
    readonly config: ModelConfig,
    readonly param: ParameterLookup,
  ) {}

  forward(x: Tensor, context: AttentionContext): Tensor {
    const { numHeads: h, numKvHeads: hkv, headDim: d } = this.config;
    const [b, t] = x.shape;
    const rotate = (heads: Tensor) => rotateHeads(heads, context, this.config.rope.layout);
    const q = rotate(projectHeads(x, this.param('q_proj.weight'), h, d));
    const k = rotate(projectHeads(x, this.param('k_proj.weight'), hkv, d));
    const v = projectHeads(x, this.param('v_proj.weight'), hkv, d);
    const kv = keysAndValues(k, v, context);
    const heads = attention(q, kv.k, kv.v, {
      causal: true,
      keyOffset: kv.keyOffset,
      keyLength: kv.keyLength,
      scale: 1 / Math.sqrt(d),
    });
    return linear(reshape(heads, [b, t, h * d]), this.param('out_proj.weight'));
  }

  cacheShapes(batch: number, capacity: number): { k: number[]; v: number[] } {
    const { numKvHeads: hkv, headDim: d } = this.config;
    return { k: [batch, capacity, hkv, d], v: [batch, capacity, hkv, d] };
  }
}
