/**
 * Multi-head differential attention, as the official Diff-Transformer/multihead_flashdiff_1.py:
 *
 *   [Q1; Q2] = X·W_Q,  [K1; K2] = X·W_K,  V = X·W_V          (half-heads 2i and 2i+1 form head i)
 *   DiffAttn(X) = (softmax(Q1·K1ᵀ/√d) − λ·softmax(Q2·K2ᵀ/√d))·V
 *   λ = exp(λq1·λk1) − exp(λq2·λk2) + λinit
 *   head_i = (1 − λinit) · RMSNorm(DiffAttn_i(X))
 *   MultiHead(X) = Concat(head_1 … head_H)·W_O
 *
 * Q and K are rotated (rotary embedding) before the maps; the two maps, the subtraction, the per-head
 * RMSNorm and the (1 − λinit) factor run in the one fused diffAttention kernel.
 */
import type { Backend } from '../../backend/kernels.js';
import { diffAttention } from '../../ops/attention.js';
import { linear } from '../../ops/matmul.js';
import { tensor } from '../../tensor/create.js';
import { keep } from '../../tensor/scope.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { ModelConfig } from '../config.js';
import { lambdaInit } from '../config.js';
import { keysAndValues } from './kv.js';
import { projectHeads, rotateHeads } from './projections.js';
import type { AttentionContext, AttentionModule, ParameterLookup } from './module.js';

/** λ of one layer from its four learned vectors, computed in float64. */
export function lambdaFull(
  lambdaQ1: ArrayLike<number>,
  lambdaK1: ArrayLike<number>,
  lambdaQ2: ArrayLike<number>,
  lambdaK2: ArrayLike<number>,
  init: number,
): number {
  let dot1 = 0;
  let dot2 = 0;
  for (let i = 0; i < lambdaQ1.length; i++) {
    dot1 += lambdaQ1[i] * lambdaK1[i];
    dot2 += lambdaQ2[i] * lambdaK2[i];
  }
  return Math.exp(dot1) - Math.exp(dot2) + init;
}

export class DifferentialAttention implements AttentionModule {
  readonly lambdaInit: number;
  readonly lambda: number;
  readonly #lambdaPerHead: Tensor;

  /**
   * @param depth layer index counted from 0 (λinit = 0.8 − 0.6·exp(−0.3·depth))
   * @param lambdaVectors host copies of λq1, λk1, λq2, λk2: λ is a constant of the weights, computed once
   */
  constructor(
    readonly config: ModelConfig,
    depth: number,
    readonly param: ParameterLookup,
    lambdaVectors: { q1: ArrayLike<number>; k1: ArrayLike<number>; q2: ArrayLike<number>; k2: ArrayLike<number> },
    backend: Backend,
    options: { lambdaInit?: number } = {},
  ) {
    this.lambdaInit = options.lambdaInit ?? lambdaInit(depth);
    this.lambda = lambdaFull(lambdaVectors.q1, lambdaVectors.k1, lambdaVectors.q2, lambdaVectors.k2, this.lambdaInit);
    this.#lambdaPerHead = keep(
      tensor(new Float32Array(config.numHeads).fill(this.lambda), [config.numHeads], { backend }),
    );
  }

  forward(x: Tensor, context: AttentionContext): Tensor {
    const { numHeads: h, numKvHeads: hkv, headDim: d } = this.config;
    const [b, t] = x.shape;
    const rotate = (heads: Tensor) => rotateHeads(heads, context, this.config.rope.layout);
    const q = rotate(projectHeads(x, this.param('q_proj.weight'), 2 * h, d));
    const k = rotate(projectHeads(x, this.param('k_proj.weight'), 2 * hkv, d));
    const v = projectHeads(x, this.param('v_proj.weight'), hkv, 2 * d);
    const kv = keysAndValues(k, v, context);
    const heads = diffAttention(q, kv.k, kv.v, this.#lambdaPerHead, {
      causal: true,
      keyOffset: kv.keyOffset,
      keyLength: kv.keyLength,
      scale: 1 / Math.sqrt(d),
      norm: {
        weight: this.config.subLayerNorm.affine ? this.param('subln.weight') : null,
        eps: this.config.subLayerNorm.eps,
        outputScale: 1 - this.lambdaInit,
      },
    });
    return linear(heads.reshape([b, t, h * 2 * d]), this.param('out_proj.weight'));
  }

  cacheShapes(batch: number, capacity: number): { k: number[]; v: number[] } {
    const { numKvHeads: hkv, headDim: d } = this.config;
    return { k: [batch, capacity, 2 * hkv, d], v: [batch, capacity, hkv, 2 * d] };
  }

  dispose(): void {
    this.#lambdaPerHead.dispose();
  }
}
