/**
 * Hugging Face `transformers` DiffLlamaForCausalLM in float64, written from its eager attention in HF's
 * own terms (HF tensor names, HF head layout, no permutation), so that it checks core's DiffLlama
 * loader — which permutes rows onto the fused kernel — rather than repeating it.
 *
 * Per layer, with H query heads of width D and Hkv kv heads (n = H / Hkv):
 *   x = RMSNorm(h)·input_layernorm;  q = x·Wqᵀ [T, H, D], k = x·Wkᵀ [T, Hkv, D], v = x·Wvᵀ [T, Hkv, D]
 *   q, k rotated in the half layout (pairs j, j + D/2), tables computed as PyTorch does in float32
 *   p_j = causal softmax(q_j·k_⌊j/n⌋ᵀ / √D)                            for each query head j
 *   V_i = [v_⌊i/n⌋ ; v_⌊(H/2+i)/n⌋]  (width 2D)                         for i < H/2
 *   o_j = p_j · V_(j mod H/2)
 *   head_i = (1 − λinit)·RMSNorm(o_i − λ·o_(H/2+i))  (no weight, eps = rms_norm_eps), i < H/2
 *   h += concat(head_i)·Woᵀ;  h += down(silu(gate(y))·up(y)) with y = RMSNorm(h)·post_attention_layernorm
 * then the final norm and lm_head (the embedding when tied). λ = exp(λq1·λk1) − exp(λq2·λk2) + λinit,
 * λinit = 0.8 − 0.6·exp(−0.3·layer) with the 0-based layer index.
 */
import type { HostTensor } from '@diff-transformer/core';
import { add, swiglu } from './elementwise.js';
import { embedding } from './embedding.js';
import { linear } from './matmul.js';
import { rmsNorm } from './rms-norm.js';
import type { RefTensor } from './tensor.js';
import { refTensor, refZeros } from './tensor.js';

export interface DiffLlamaReferenceConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
}

/** cos/sin [T, D/2] as DiffLlamaRotaryEmbedding computes them: inverse frequencies, angles and cos/sin in float32. */
export function diffLlamaRotaryTables(
  headDim: number,
  theta: number,
  positions: number,
): { cos: Float64Array; sin: Float64Array } {
  const f = Math.fround;
  const half = headDim / 2;
  const cos = new Float64Array(positions * half);
  const sin = new Float64Array(positions * half);
  for (let j = 0; j < half; j++) {
    const inverse = f(1 / f(theta ** f((2 * j) / headDim)));
    for (let p = 0; p < positions; p++) {
      const angle = f(p * inverse);
      cos[p * half + j] = f(Math.cos(angle));
      sin[p * half + j] = f(Math.sin(angle));
    }
  }
  return { cos, sin };
}

/**
 * Logits [B, T, V] of a DiffLlama checkpoint (HF names) on equal-length id rows. `rope` gives the
 * rotary rows [T, D/2] of each position (e.g. a scaled RoPE's, rope-scaling.ts); default: the float32
 * tables above.
 */
export function diffLlamaLogits(
  config: DiffLlamaReferenceConfig,
  parameters: ReadonlyMap<string, HostTensor>,
  ids: ReadonlyArray<readonly number[]>,
  rope?: { cos: Float64Array; sin: Float64Array },
): RefTensor {
  const param = (name: string): RefTensor => {
    const p = parameters.get(name);
    if (!p) throw new Error(`DiffLlama reference: parameter '${name}' is missing`);
    return refTensor(p.data, p.shape);
  };
  const batch = ids.length;
  const tokens = ids[0].length;
  const eps = { eps: config.rmsNormEps };
  let h = embedding(param('model.embed_tokens.weight'), refTensor(ids.flat(), [batch, tokens]));
  for (let layer = 0; layer < config.numLayers; layer++) {
    const p = (name: string) => param(`model.layers.${layer}.${name}`);
    const x = rmsNorm(h, p('input_layernorm.weight'), eps);
    h = add(h, attention(config, layer, p, x, rope));
    const y = rmsNorm(h, p('post_attention_layernorm.weight'), eps);
    h = add(
      h,
      linear(
        swiglu(linear(y, p('mlp.gate_proj.weight')), linear(y, p('mlp.up_proj.weight'))),
        p('mlp.down_proj.weight'),
      ),
    );
  }
  h = rmsNorm(h, param('model.norm.weight'), eps);
  return linear(h, param(config.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'));
}

function attention(
  config: DiffLlamaReferenceConfig,
  layer: number,
  p: (name: string) => RefTensor,
  x: RefTensor,
  rope?: { cos: Float64Array; sin: Float64Array },
): RefTensor {
  const { numAttentionHeads: heads, numKeyValueHeads: kvHeads, headDim: d } = config;
  const [batch, tokens] = x.shape;
  const n = heads / kvHeads;
  const half = heads / 2;
  const q = linear(x, p('self_attn.q_proj.weight')).data; // [B, T, H, D]
  const k = linear(x, p('self_attn.k_proj.weight')).data; // [B, T, Hkv, D]
  const v = linear(x, p('self_attn.v_proj.weight')).data; // [B, T, Hkv, D]
  const { cos, sin } = rope ?? diffLlamaRotaryTables(d, config.ropeTheta, tokens);
  rotateHalf(q, batch, tokens, heads, d, cos, sin);
  rotateHalf(k, batch, tokens, kvHeads, d, cos, sin);

  const dot = (a: Float64Array, b: Float64Array, aAt: number, bAt: number) => {
    let s = 0;
    for (let j = 0; j < d; j++) s += a[aAt + j] * b[bAt + j];
    return s;
  };
  const vector = (name: string) => p(`self_attn.${name}`).data;
  const lambdaInit = 0.8 - 0.6 * Math.exp(-0.3 * layer);
  const lambda =
    Math.exp(dot(vector('lambda_q1'), vector('lambda_k1'), 0, 0)) -
    Math.exp(dot(vector('lambda_q2'), vector('lambda_k2'), 0, 0)) +
    lambdaInit;

  const out = refZeros([batch, tokens, half * 2 * d]);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < tokens; t++) {
      // o_j for every query head j at this token: [H, 2D]
      const o = new Float64Array(heads * 2 * d);
      for (let j = 0; j < heads; j++) {
        const g = Math.floor(j / n);
        const scores: number[] = [];
        for (let s = 0; s <= t; s++)
          scores.push(
            dot(q, k, ((b * tokens + t) * heads + j) * d, ((b * tokens + s) * kvHeads + g) * d) / Math.sqrt(d),
          );
        const max = Math.max(...scores);
        const e = scores.map((score) => Math.exp(score - max));
        const total = e.reduce((a, c) => a + c, 0);
        const i = j % half;
        const valueHeads = [Math.floor(i / n), Math.floor((half + i) / n)];
        for (let s = 0; s <= t; s++) {
          const w = e[s] / total;
          valueHeads.forEach((vh, part) => {
            const at = ((b * tokens + s) * kvHeads + vh) * d;
            for (let c = 0; c < d; c++) o[j * 2 * d + part * d + c] += w * v[at + c];
          });
        }
      }
      for (let i = 0; i < half; i++) {
        const diff = new Float64Array(2 * d);
        for (let c = 0; c < 2 * d; c++) diff[c] = o[i * 2 * d + c] - lambda * o[(half + i) * 2 * d + c];
        const meanSquare = diff.reduce((a, c) => a + c * c, 0) / (2 * d);
        const scale = (1 - lambdaInit) / Math.sqrt(meanSquare + config.rmsNormEps);
        for (let c = 0; c < 2 * d; c++) out.data[(b * tokens + t) * half * 2 * d + i * 2 * d + c] = diff[c] * scale;
      }
    }
  }
  return linear(out, p('self_attn.o_proj.weight'));
}

/** In place: each head's pairs (x_j, x_(j+D/2)) → (x_j·cos − x_(j+D/2)·sin, x_(j+D/2)·cos + x_j·sin). */
function rotateHalf(
  x: Float64Array,
  batch: number,
  tokens: number,
  heads: number,
  d: number,
  cos: Float64Array,
  sin: Float64Array,
): void {
  const half = d / 2;
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < tokens; t++) {
      for (let hd = 0; hd < heads; hd++) {
        const at = ((b * tokens + t) * heads + hd) * d;
        for (let j = 0; j < half; j++) {
          const a = x[at + j];
          const c = x[at + j + half];
          x[at + j] = a * cos[t * half + j] - c * sin[t * half + j];
          x[at + j + half] = c * cos[t * half + j] + a * sin[t * half + j];
        }
      }
    }
  }
}
