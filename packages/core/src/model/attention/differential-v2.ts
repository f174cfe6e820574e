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
import { reshape } from '../../ops/memory.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { ModelConfig } from '../config.js';
import { keysAndValues } from './kv.js';
import { projectHeads, rotateHeads } from './projections.js';
import type { AttentionContext, AttentionModule, ParameterLookup } from './module.js';

export class DifferentialAttentionV2 implements AttentionModule {
  constructor(
    readonly config: ModelConfig,
    readonly param: ParameterLookup,
  ) {}

  forward(x: Tensor, context: AttentionContext): Tensor {
    const { numHeads: h, numKvHeads: hkv, headDim: d } = this.config;
    const [b, t] = x.shape;
    const rotate = (heads: Tensor) => rotateHeads(heads, context, this.config.rope.layout);
    const q = rotate(projectHeads(x, this.param('q_proj.weight'), 2 * h, d));
    const k = rotate(projectHeads(x, this.param('k_proj.weight'), hkv, d));
    const v = projectHeads(x, this.param('v_proj.weight'), hkv, d);
    const lambda = sigmoid(linear(x, this.param('lambda_proj.weight')));
    const kv = keysAndValues(k, v, context);
    const heads = diffAttention(q, kv.k, kv.v, lambda, {
      causal: true,
      keyOffset: kv.keyOffset,
      keyLength: kv.keyLength,
      scale: 1 / Math.sqrt(d),
      norm: null,
    });
    return linear(reshape(heads, [b, t, h * d]), this.param('out_proj.weight'));
  }

  cacheShapes(batch: number, capacity: number): { k: number[]; v: number[] } {
    const { numKvHeads: hkv, headDim: d } = this.config;
    return { k: [batch, capacity, hkv, d], v: [batch, capacity, hkv, d] };
  }
}
