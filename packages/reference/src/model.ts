/**
 * The whole decoder in float64, written after the official code rather than after core's graph:
 *
 *   embedding → per layer: h += Attention(RMSNorm(h)); h += SwiGLU(RMSNorm(h)) → RMSNorm → LM head
 *
 * Differential attention follows Diff-Transformer/multihead_flashdiff_1.py line by line: q viewed
 * [B, T, 2H, d], k [B, T, 2Hkv, d], v [B, T, Hkv, 2d]; the maps are split as q.reshape(B, T, H, 2, d);
 * keys and values are repeated per query head (repeat_kv) and each map is an ordinary causal softmax
 * attention (flash_attn_func); then attn1 − λ·attn2, the subln RMSNorm over 2d and × (1 − λinit).
 * It deliberately never calls the fused reference diffAttention, so the two formulations check each
 * other. DIFF V2 follows Diff-Transformer-V2/multihead_flashdiffv2.py the same way.
 *
 * The config's ablation switches are followed as the paper states them: subLayerNorm null skips the
 * subln line (× (1 − λinit) stays), lambdaInit a number replaces lambda_init_fn, and lambdaParameterization
 * 'scalar' reads λ from the layer's one parameter `lambda` instead of the four vectors.
 */
import type { HostTensor, ModelConfig } from '@diff-transformer/core';
import { attention, attentionProbabilities, attentionScores } from './attention.js';
import { add, sigmoid, swiglu } from './elementwise.js';
import { embedding } from './embedding.js';
import { argmax } from './logits.js';
import { linear } from './matmul.js';
import { rmsNorm } from './rms-norm.js';
import { modelRotaryRows } from './rope-scaling.js';
import { rotary } from './rotary.js';
import type { RefTensor } from './tensor.js';
import { refTensor, refZeros } from './tensor.js';

type Parameters = ReadonlyMap<string, HostTensor>;
type Lookup = (name: string) => RefTensor;
interface Rope {
  cos: RefTensor;
  sin: RefTensor;
}

/**
 * What modelLogits hands an attention observer for each layer: the softmax maps that layer's attention
 * used, each [B, H, T, T] (one for the baseline; map 1 and map 2 for DIFF V1/V2), their attention
 * logits (the scaled scores before the softmax, −∞ where the causal mask hides a key, same shapes), and
 * the λ that scales map 2 (a number per layer for V1, [B, T, H] per token and head for V2, null for the
 * baseline).
 */
export interface AttentionObservation {
  readonly depth: number;
  readonly maps: readonly RefTensor[];
  readonly logits: readonly RefTensor[];
  readonly lambda: number | RefTensor | null;
}

export interface ModelLogitsOptions {
  /** Called once per layer with its attention maps; computing them is slow (full T×T maps per head). */
  readonly onAttention?: (observation: AttentionObservation) => void;
  /** Called once per layer with its output, the residual stream [B, T, E] after the block (hidden states). */
  readonly onHiddenState?: (depth: number, hidden: RefTensor) => void;
  /** The rotary rows [T, d/2] of each position (modelRotaryRows); default: one forward over all tokens. */
  readonly rope?: { cos: RefTensor; sin: RefTensor };
}

/** The switches of the config that decide λ (ModelConfig's fields of those names). */
type LambdaConfig = Partial<Pick<ModelConfig, 'lambdaInit' | 'lambdaParameterization'>>;

/**
 * λinit = 0.8 − 0.6·exp(−0.3·depth), the official lambda_init_fn (depth counted from 0), or the fixed
 * value a config's lambdaInit gives.
 */
export function referenceLambdaInit(depth: number, config: LambdaConfig = {}): number {
  if (typeof config.lambdaInit === 'number') return config.lambdaInit;
  return 0.8 - 0.6 * Math.exp(-0.3 * depth);
}

/**
 * λ = exp(λq1·λk1) − exp(λq2·λk2) + λinit of one DIFF V1 layer; with a scalar λ, its one parameter.
 */
export function referenceLambda(parameters: Parameters, depth: number, config: LambdaConfig = {}): number {
  const vector = (name: string) => parameterOf(parameters, `layers.${depth}.attn.${name}`).data;
  if (config.lambdaParameterization === 'scalar') return vector('lambda')[0];
  const dot = (a: Float64Array, b: Float64Array) => a.reduce((sum, x, i) => sum + x * b[i], 0);
  return (
    Math.exp(dot(vector('lambda_q1'), vector('lambda_k1'))) -
    Math.exp(dot(vector('lambda_q2'), vector('lambda_k2'))) +
    referenceLambdaInit(depth, config)
  );
}

/** Logits [B, T, V] of token ids (every row equally long) for a model's config and host parameters. */
export function modelLogits(
  config: ModelConfig,
  parameters: Parameters,
  ids: ReadonlyArray<readonly number[]>,
  options: ModelLogitsOptions = {},
): RefTensor {
  const param: Lookup = (name) => parameterOf(parameters, name);
  const batch = ids.length;
  const tokens = ids[0].length;
  const rope = options.rope ?? modelRotaryRows(config, [tokens]);
  const normEps = { eps: config.normEps };

  let h = embedding(param('embed_tokens.weight'), refTensor(ids.flat(), [batch, tokens]));
  for (let depth = 0; depth < config.numLayers; depth++) {
    const layer: Lookup = (name) => param(`layers.${depth}.${name}`);
    const x = rmsNorm(h, layer('attn_norm.weight'), normEps);
    h = add(h, attentionOf(config, parameters, depth, x, rope, options.onAttention));
    const y = rmsNorm(h, layer('ffn_norm.weight'), normEps);
    const hidden = swiglu(linear(y, layer('ffn.gate_proj.weight')), linear(y, layer('ffn.up_proj.weight')));
    h = add(h, linear(hidden, layer('ffn.down_proj.weight')));
    options.onHiddenState?.(depth, h);
  }
  h = rmsNorm(h, param('norm.weight'), normEps);
  return linear(h, param(config.tieWordEmbeddings ? 'embed_tokens.weight' : 'lm_head.weight'));
}

/**
 * Greedy decoding by full recomputation: each step runs modelLogits over the whole sequence and takes
 * the argmax of the last position. `margins` holds each step's gap between the two largest logits,
 * so a caller can tell a robust choice from a near tie.
 */
export function greedyContinuation(
  config: ModelConfig,
  parameters: Parameters,
  prompt: readonly number[],
  maxNewTokens: number,
): { ids: number[]; margins: number[] } {
  const sequence = [...prompt];
  const ids: number[] = [];
  const margins: number[] = [];
  for (let step = 0; step < maxNewTokens; step++) {
    const logits = modelLogits(config, parameters, [sequence]);
    const last = refTensor(logits.data.subarray(logits.data.length - config.vocabSize), [config.vocabSize]);
    const next = argmax(last).data[0];
    const runnerUp = Math.max(...last.data.filter((_, i) => i !== next));
    ids.push(next);
    margins.push(last.data[next] - runnerUp);
    sequence.push(next);
  }
  return { ids, margins };
}

type Observer = ModelLogitsOptions['onAttention'];

function attentionOf(
  config: ModelConfig,
  parameters: Parameters,
  depth: number,
  x: RefTensor,
  rope: Rope,
  observe: Observer,
): RefTensor {
  const layer: Lookup = (name) => parameterOf(parameters, `layers.${depth}.attn.${name}`);
  switch (config.attention) {
    case 'differential':
      return differentialAttention(config, parameters, depth, layer, x, rope, observe);
    case 'differential-v2':
      return differentialAttentionV2(config, depth, layer, x, rope, observe);
    case 'standard':
      return standardAttention(config, depth, layer, x, rope, observe);
  }
}

/** multihead_flashdiff_1.py MultiheadFlashDiff1.forward. */
function differentialAttention(
  config: ModelConfig,
  parameters: Parameters,
  depth: number,
  param: Lookup,
  x: RefTensor,
  rope: Rope,
  observe: Observer,
): RefTensor {
  const { numHeads, numKvHeads, headDim: d } = config;
  const [batch, tokens] = x.shape;
  const rotate = (t: RefTensor) => rotary(t, rope.cos, rope.sin, { layout: config.rope.layout, positionOffset: 0 });
  const q = rotate(view(linear(x, param('q_proj.weight')), [batch, tokens, 2 * numHeads, d]));
  const k = rotate(view(linear(x, param('k_proj.weight')), [batch, tokens, 2 * numKvHeads, d]));
  const v = view(linear(x, param('v_proj.weight')), [batch, tokens, numKvHeads, 2 * d]);

  // q.reshape(bsz, tgt_len, num_heads, 2, head_dim); q1, q2 = q[:, :, :, 0], q[:, :, :, 1] (same for k)
  const nRep = numHeads / numKvHeads;
  const causal = { causal: true, keyOffset: 0, keyLength: tokens, scale: d ** -0.5 };
  const attn1 = attention(pickHeads(q, 0), repeatKv(pickHeads(k, 0), nRep), repeatKv(v, nRep), causal);
  const attn2 = attention(pickHeads(q, 1), repeatKv(pickHeads(k, 1), nRep), repeatKv(v, nRep), causal);

  const lambdaInit = referenceLambdaInit(depth, config);
  const lambda = referenceLambda(parameters, depth, config);
  if (observe) {
    const map = (parity: 0 | 1) =>
      attentionProbabilities(pickHeads(q, parity), repeatKv(pickHeads(k, parity), nRep), causal);
    const logits = (parity: 0 | 1) =>
      attentionScores(pickHeads(q, parity), repeatKv(pickHeads(k, parity), nRep), causal);
    observe({ depth, maps: [map(0), map(1)], logits: [logits(0), logits(1)], lambda });
  }
  const difference = { shape: attn1.shape, data: attn1.data.map((a, i) => a - lambda * attn2.data[i]) };
  // attn = self.subln(attn), a line the "w/o GroupNorm" ablation leaves out.
  const sublnConfig = config.subLayerNorm;
  const subln = sublnConfig?.affine ? param('subln.weight') : null;
  const normed = sublnConfig ? rmsNorm(difference, subln, { eps: sublnConfig.eps }) : difference;
  const scaled = { shape: normed.shape, data: normed.data.map((a) => a * (1 - lambdaInit)) };
  return linear(view(scaled, [batch, tokens, numHeads * 2 * d]), param('out_proj.weight'));
}

/** multihead_flashdiffv2.py: 2H query heads; output head i = attn[2i] − σ(x·W_λ)_i·attn[2i+1]. */
function differentialAttentionV2(
  config: ModelConfig,
  depth: number,
  param: Lookup,
  x: RefTensor,
  rope: Rope,
  observe: Observer,
): RefTensor {
  const { numHeads, numKvHeads, headDim: d } = config;
  const [batch, tokens] = x.shape;
  const rotate = (t: RefTensor) => rotary(t, rope.cos, rope.sin, { layout: config.rope.layout, positionOffset: 0 });
  const q = rotate(view(linear(x, param('q_proj.weight')), [batch, tokens, 2 * numHeads, d]));
  const k = rotate(view(linear(x, param('k_proj.weight')), [batch, tokens, numKvHeads, d]));
  const v = view(linear(x, param('v_proj.weight')), [batch, tokens, numKvHeads, d]);

  const nRep = (2 * numHeads) / numKvHeads;
  const mask = { causal: true, keyOffset: 0, keyLength: tokens, scale: d ** -0.5 };
  const attn = attention(q, repeatKv(k, nRep), repeatKv(v, nRep), mask);
  const lambda = sigmoid(linear(x, param('lambda_proj.weight')));
  if (observe) {
    // Map 1 of head i is query head 2i, map 2 is 2i + 1 (both over the shared keys).
    const maps = attentionProbabilities(q, repeatKv(k, nRep), mask);
    const scores = attentionScores(q, repeatKv(k, nRep), mask);
    const [, heads, rows, keys] = maps.shape;
    const pick = (all: RefTensor, parity: 0 | 1) => {
      const out = refZeros([batch, numHeads, rows, keys]);
      for (let b = 0; b < batch; b++) {
        for (let i = 0; i < numHeads; i++) {
          const from = (b * heads + 2 * i + parity) * rows * keys;
          out.data.set(all.data.subarray(from, from + rows * keys), (b * numHeads + i) * rows * keys);
        }
      }
      return out;
    };
    observe({
      depth,
      maps: [pick(maps, 0), pick(maps, 1)],
      logits: [pick(scores, 0), pick(scores, 1)],
      lambda: refTensor(lambda.data, [batch, tokens, numHeads]),
    });
  }
  const attn1 = pickHeads(attn, 0);
  const attn2 = pickHeads(attn, 1);
  const out = refZeros(attn1.shape);
  out.data.forEach((_, i) => {
    const row = Math.floor(i / d); // (b, t, head) flattened
    out.data[i] = attn1.data[i] - lambda.data[row] * attn2.data[i];
  });
  return linear(view(out, [batch, tokens, numHeads * d]), param('out_proj.weight'));
}

/** The baseline: causal softmax attention with rotary positions and GQA. */
function standardAttention(
  config: ModelConfig,
  depth: number,
  param: Lookup,
  x: RefTensor,
  rope: Rope,
  observe: Observer,
): RefTensor {
  const { numHeads, numKvHeads, headDim: d } = config;
  const [batch, tokens] = x.shape;
  const rotate = (t: RefTensor) => rotary(t, rope.cos, rope.sin, { layout: config.rope.layout, positionOffset: 0 });
  const q = rotate(view(linear(x, param('q_proj.weight')), [batch, tokens, numHeads, d]));
  const k = rotate(view(linear(x, param('k_proj.weight')), [batch, tokens, numKvHeads, d]));
  const v = view(linear(x, param('v_proj.weight')), [batch, tokens, numKvHeads, d]);
  const nRep = numHeads / numKvHeads;
  const mask = { causal: true, keyOffset: 0, keyLength: tokens, scale: d ** -0.5 };
  const attn = attention(q, repeatKv(k, nRep), repeatKv(v, nRep), mask);
  if (observe) {
    const keys = repeatKv(k, nRep);
    observe({
      depth,
      maps: [attentionProbabilities(q, keys, mask)],
      logits: [attentionScores(q, keys, mask)],
      lambda: null,
    });
  }
  return linear(view(attn, [batch, tokens, numHeads * d]), param('out_proj.weight'));
}

/** x [B, T, 2n, w] → heads 2i + parity, [B, T, n, w]: x.reshape(B, T, n, 2, w)[:, :, :, parity]. */
function pickHeads(x: RefTensor, parity: 0 | 1): RefTensor {
  const [batch, tokens, heads, width] = x.shape;
  const out = refZeros([batch, tokens, heads / 2, width]);
  for (let row = 0; row < batch * tokens; row++) {
    for (let i = 0; i < heads / 2; i++) {
      const from = (row * heads + 2 * i + parity) * width;
      out.data.set(x.data.subarray(from, from + width), (row * (heads / 2) + i) * width);
    }
  }
  return out;
}

/** The official repeat_kv: [B, S, n, w] → [B, S, n·nRep, w], head j reading head ⌊j / nRep⌋. */
function repeatKv(x: RefTensor, nRep: number): RefTensor {
  const [batch, keys, heads, width] = x.shape;
  const out = refZeros([batch, keys, heads * nRep, width]);
  for (let row = 0; row < batch * keys; row++) {
    for (let j = 0; j < heads * nRep; j++) {
      const from = (row * heads + Math.floor(j / nRep)) * width;
      out.data.set(x.data.subarray(from, from + width), (row * heads * nRep + j) * width);
    }
  }
  return out;
}

/** The same values seen with another shape (PyTorch's view on a contiguous tensor). */
function view(x: RefTensor, shape: readonly number[]): RefTensor {
  return refTensor(x.data, shape);
}

function parameterOf(parameters: Parameters, name: string): RefTensor {
  const p = parameters.get(name);
  if (!p) throw new Error(`reference model: parameter '${name}' is missing`);
  return refTensor(p.data, p.shape);
}
