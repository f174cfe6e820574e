/**
 * Standard multi-head (GQA) softmax attention with rotary positions: the baseline Transformer the
 * paper compares against, everything else in the block equal.
 */
import { attention } from '../../ops/attention.js';
import { linear } from '../../ops/matmul.js';
import { rotary } from '../../ops/rotary.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { ModelConfig } from '../config.js';
import { keysAndValues } from './kv.js';
import type { AttentionContext, AttentionModule, ParameterLookup } from './module.js';

export class StandardAttention implements AttentionModule {
  constructor(
    readonly config: ModelConfig,
    readonly param: ParameterLookup,
  ) {}

  forward(x: Tensor, context: AttentionContext): Tensor {
    const { numHeads: h, numKvHeads: hkv, headDim: d } = this.config;
    const [b, t] = x.shape;
    const { cos, sin } = context.rope.tables(context.positionOffset + t);
    const rope = { layout: this.config.rope.layout, positionOffset: context.positionOffset };
    const q = rotary(linear(x, this.param('q_proj.weight')).reshape([b, t, h, d]), cos, sin, rope);
    const k = rotary(linear(x, this.param('k_proj.weight')).reshape([b, t, hkv, d]), cos, sin, rope);
    const v = linear(x, this.param('v_proj.weight')).reshape([b, t, hkv, d]);
    const kv = keysAndValues(k, v, context);
    const heads = attention(q, kv.k, kv.v, {
      causal: true,
      keyOffset: kv.keyOffset,
      keyLength: kv.keyLength,
      scale: 1 / Math.sqrt(d),
    });
    return linear(heads.reshape([b, t, h * d]), this.param('out_proj.weight'));
  }

  cacheShapes(batch: number, capacity: number): { k: number[]; v: number[] } {
    const { numKvHeads: hkv, headDim: d } = this.config;
    return { k: [batch, capacity, hkv, d], v: [batch, capacity, hkv, d] };
  }
}
