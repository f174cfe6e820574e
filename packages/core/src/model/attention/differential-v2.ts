/**
 * DIFF Transformer V2 attention, as the official Diff-Transformer-V2/multihead_flashdiffv2.py:
 * 2·H query heads of width d; query heads 2i and 2i+1 are the two maps of output head i and share
 * their key/value head; λ is per token and head, λ = σ(X·W_λ); no per-head norm:
 *
 *   head_i = softmax(Q_{2i}·Kᵀ/√d)·V − σ(X·W_λ)_i · softmax(Q_{2i+1}·Kᵀ/√d)·V
 */
import { diffAttention } from '../../ops/attention.js';
import { sigmoid } from '../../ops/elementwise.js';
import { linear } from '../../ops/matmul.js';
import { rotary } from '../../ops/rotary.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { ModelConfig } from '../config.js';
import { keysAndValues } from './kv.js';
import type { AttentionContext, AttentionModule, ParameterLookup } from './module.js';

export class DifferentialAttentionV2 implements AttentionModule {
  constructor(
    readonly config: ModelConfig,
    readonly param: ParameterLookup,
  ) {}

  forward(x: Tensor, context: AttentionContext): Tensor {
    const { numHeads: h, numKvHeads: hkv, headDim: d } = this.config;
    const [b, t] = x.shape;
    const { cos, sin } = context.rope.tables(context.positionOffset + t);
    const rope = { layout: this.config.rope.layout, positionOffset: context.positionOffset };
    const q = rotary(linear(x, this.param('q_proj.weight')).reshape([b, t, 2 * h, d]), cos, sin, rope);
    const k = rotary(linear(x, this.param('k_proj.weight')).reshape([b, t, hkv, d]), cos, sin, rope);
    const v = linear(x, this.param('v_proj.weight')).reshape([b, t, hkv, d]);
    const lambda = sigmoid(linear(x, this.param('lambda_proj.weight')));
    const kv = keysAndValues(k, v, context);
    const heads = diffAttention(q, kv.k, kv.v, lambda, {
      causal: true,
      keyOffset: kv.keyOffset,
      keyLength: kv.keyLength,
      scale: 1 / Math.sqrt(d),
      norm: null,
    });
    return linear(heads.reshape([b, t, h * d]), this.param('out_proj.weight'));
  }

  cacheShapes(batch: number, capacity: number): { k: number[]; v: number[] } {
    const { numKvHeads: hkv, headDim: d } = this.config;
    return { k: [batch, capacity, hkv, d], v: [batch, capacity, hkv, d] };
  }
}
