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
 *
 * The config's ablation switches (the paper's Table 6): subLayerNorm null drops the RMSNorm (the kernel
 * runs without its norm and (1 − λinit) is applied after it), lambdaInit fixes λinit for every layer,
 * lambdaParameterization 'scalar' learns λ as one number per layer instead of the four vectors.
 */
import type { Backend } from '../../backend/kernels.js';
import { recordingTape } from '../../autograd/tape.js';
import { diffAttention } from '../../ops/attention.js';
import { add, exp, scale } from '../../ops/elementwise.js';
import { linear, matmul } from '../../ops/matmul.js';
import { reshape } from '../../ops/memory.js';
import { tensor } from '../../tensor/create.js';
import { keep, tidy } from '../../tensor/scope.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { ModelConfig } from '../config.js';
import { layerLambdaInit } from '../config.js';
import { keysAndValues } from './kv.js';
import type { AttentionContext, AttentionModule, ParameterLookup } from './module.js';
import { projectHeads, rotateHeads } from './projections.js';

/** λ of one layer from its four learned vectors, computed in float64 (a host-side reference). */
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

const LAMBDA_VECTORS = ['lambda_q1', 'lambda_k1', 'lambda_q2', 'lambda_k2'] as const;
/** The one parameter of a scalar λ ([1]). */
const LAMBDA_SCALAR = ['lambda'] as const;

export class DifferentialAttention implements AttentionModule {
  readonly lambdaInit: number;
  /** [H, 1] of ones: broadcasts the layer's one λ to every head with a matmul, gradient included. */
  readonly #ones: Tensor;
  /** λ per head for inference, and the versions of the four vectors it was computed from. */
  #cached: { lambda: Tensor; versions: number[] } | null = null;

  /**
   * @param depth layer index counted from 0 (λinit = 0.8 − 0.6·exp(−0.3·depth), unless the config fixes it)
   */
  constructor(
    readonly config: ModelConfig,
    depth: number,
    readonly param: ParameterLookup,
    backend: Backend,
    options: { lambdaInit?: number } = {},
  ) {
    this.lambdaInit = options.lambdaInit ?? layerLambdaInit(config, depth);
    this.#ones = keep(tensor(new Float32Array(config.numHeads).fill(1), [config.numHeads, 1], { backend }));
    // Made now rather than at the first forward, so a forward pass leaves no new storage behind.
    try {
      this.lambdaPerHead();
    } catch (error) {
      this.dispose();
      throw error;
    }
  }

  /**
   * λ = exp(λq1·λk1) − exp(λq2·λk2) + λinit (or the scalar λ), the same for every head, as a tensor [H].
   * It is computed through ops, so inside valueAndGrads its parameters get their gradients; outside,
   * the value is kept until an optimiser step writes one of them.
   */
  lambdaPerHead(): Tensor {
    const names = this.config.lambdaParameterization === 'scalar' ? LAMBDA_SCALAR : LAMBDA_VECTORS;
    const vectors = names.map((name) => this.param(name));
    if (recordingTape(vectors)) return this.#computeLambda(vectors);
    const versions = vectors.map((v) => v.version);
    if (!this.#cached || this.#cached.versions.some((v, i) => v !== versions[i])) {
      this.#cached?.lambda.dispose();
      this.#cached = null;
      this.#cached = { lambda: keep(tidy(() => this.#computeLambda(vectors))), versions };
    }
    return this.#cached.lambda;
  }

  /** λ of the layer as a number (reads it back). */
  async lambda(): Promise<number> {
    return (await this.lambdaPerHead().data())[0];
  }

  #computeLambda(vectors: Tensor[]): Tensor {
    if (vectors.length === 1) return reshape(matmul(this.#ones, reshape(vectors[0], [1, 1])), [this.config.numHeads]);
    const [q1, k1, q2, k2] = vectors;
    const d = q1.shape[0];
    const dot = (a: Tensor, b: Tensor) => matmul(reshape(a, [1, d]), reshape(b, [1, d]), { transposeB: true });
    const lambda = add(scale(exp(dot(q1, k1)), 1, this.lambdaInit), scale(exp(dot(q2, k2)), -1, 0));
    return reshape(matmul(this.#ones, lambda), [this.config.numHeads]);
  }

  forward(x: Tensor, context: AttentionContext): Tensor {
    const { numHeads: h, numKvHeads: hkv, headDim: d } = this.config;
    const [b, t] = x.shape;
    const rotate = (heads: Tensor) => rotateHeads(heads, context, this.config.rope.layout);
    const q = rotate(projectHeads(x, this.param('q_proj.weight'), 2 * h, d));
    const k = rotate(projectHeads(x, this.param('k_proj.weight'), 2 * hkv, d));
    const v = projectHeads(x, this.param('v_proj.weight'), hkv, 2 * d);
    const kv = keysAndValues(k, v, context);
    const subln = this.config.subLayerNorm;
    const attended = diffAttention(q, kv.k, kv.v, this.lambdaPerHead(), {
      causal: true,
      keyOffset: kv.keyOffset,
      keyLength: kv.keyLength,
      scale: 1 / Math.sqrt(d),
      norm: subln && {
        weight: subln.affine ? this.param('subln.weight') : null,
        eps: subln.eps,
        outputScale: 1 - this.lambdaInit,
      },
    });
    // Without the norm, (1 − λinit) is applied on its own: an ablation, never the fused default path.
    const heads = subln ? attended : scale(attended, 1 - this.lambdaInit, 0);
    return linear(reshape(heads, [b, t, h * 2 * d]), this.param('out_proj.weight'));
  }

  cacheShapes(batch: number, capacity: number): { k: number[]; v: number[] } {
    const { numKvHeads: hkv, headDim: d } = this.config;
    return { k: [batch, capacity, 2 * hkv, d], v: [batch, capacity, hkv, 2 * d] };
  }

  dispose(): void {
    this.#ones.dispose();
    this.#cached?.lambda.dispose();
    this.#cached = null;
  }
}
