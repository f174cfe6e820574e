/**
 * Hugging Face `transformers` DiffLlama (model_type "diffllama") onto the core graph.
 *
 * Its attention, with H = num_attention_heads query heads of width D = head_dim and Hkv =
 * num_key_value_heads key/value heads of width D (n = H / Hkv query heads per kv head, repeat_kv):
 *   - query head j reads kv head ⌊j / n⌋;
 *   - differential head i (of H/2) takes map 1 from query head i and map 2 from query head H/2 + i:
 *     the first and second halves of the heads, not adjacent pairs;
 *   - its values are the concatenation [v_⌊i/n⌋ ; v_⌊(H/2+i)/n⌋] (width 2D), shared by both maps;
 *   - (1 − λinit)·RMSNorm(attn1 − λ·attn2) with no learned weight (eps = rms_norm_eps), λinit from the
 *     0-based layer index; rotary embedding in the half (GPT-NeoX) layout, its tables computed in float32
 *     (we compute them in float64: see diffLlamaModelConfig).
 *
 * Our fused kernel instead reads, for head i of H' = H/2 and its group g = ⌊i·G/H'⌋ of G kv groups,
 * query half-heads 2i, 2i+1, key half-heads 2g, 2g+1 and value head g (width 2D). So loading permutes
 * rows of q_proj, k_proj and v_proj once, and inference runs on the one kernel:
 *   q half-head 2i ← HF q head i,   2i+1 ← HF q head H/2 + i;
 *   with i₀ = g·H'/G the first head of group g:
 *   k half-head 2g ← HF k head ⌊i₀/n⌋,   2g+1 ← HF k head ⌊(H/2 + i₀)/n⌋;
 *   v head g      ← [HF v head ⌊i₀/n⌋ ; HF v head ⌊(H/2 + i₀)/n⌋].
 * This is exact when every head of a group reads the same HF kv heads. With Hkv even we take
 * G = Hkv/2: group g is heads [g·n, (g+1)·n), which read kv heads g and Hkv/2 + g — a pure row
 * permutation, no weight duplicated. With Hkv odd (MQA, or H/Hkv odd) the two halves of a group do not
 * line up, so we take G = H' (multi-head): each head gets its own gathered copy of the rows it reads.
 */
import type { ModelConfig, ModelConfigInput } from '../model/config.js';
import { resolveConfig } from '../model/config.js';
import { ROPE_TYPES, type RopeScaling, type RopeScalingInput, resolveRopeScaling } from '../model/rope-scaling.js';
import type { HostTensor } from '../model/parameters.js';
import { ConfigError } from '../errors.js';
import { CheckpointConfigError, UnsupportedCheckpointError } from './errors.js';

/** The fields of a DiffLlama config.json this project reads. */
export interface DiffLlamaConfigJson {
  model_type: 'diffllama';
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads?: number | null;
  head_dim?: number | null;
  rms_norm_eps?: number;
  tie_word_embeddings?: boolean;
  rope_theta?: number;
  rope_scaling?: Record<string, unknown> | null;
  rope_parameters?: Record<string, unknown> | null;
  max_position_embeddings?: number;
  hidden_act?: string;
  attention_bias?: boolean;
  [key: string]: unknown;
}

/** HF's DiffLlama sizes, resolved from config.json with its defaults. */
export interface DiffLlamaDims {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  /** H: query heads (twice our differential heads). */
  numAttentionHeads: number;
  /** Hkv. */
  numKeyValueHeads: number;
  /** D. */
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** The RoPE scaling its rope_parameters / rope_scaling describe (default: plain RoPE). */
  ropeScaling: RopeScaling;
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
}

/** Reads and checks a DiffLlama config.json; `file` names it in errors. */
export function diffLlamaDims(json: Record<string, unknown>, file: string): DiffLlamaDims {
  const fail = (field: string, message: string) => new CheckpointConfigError(file, field, message);
  const int = (field: string, fallback?: number): number => {
    const value = json[field] ?? fallback;
    if (!Number.isSafeInteger(value) || (value as number) < 1)
      throw fail(field, `expected a positive integer, got ${JSON.stringify(value) ?? 'nothing'}`);
    return value as number;
  };
  if (json.model_type !== 'diffllama')
    throw fail('model_type', `expected "diffllama", got ${JSON.stringify(json.model_type)}`);
  const hiddenSize = int('hidden_size');
  const numAttentionHeads = int('num_attention_heads');
  const numKeyValueHeads = int('num_key_value_heads', numAttentionHeads);
  const headDim = int('head_dim', Math.floor(hiddenSize / numAttentionHeads));
  if (numAttentionHeads % 2 !== 0) {
    throw fail(
      'num_attention_heads',
      `DiffLlama splits the query heads into two halves (the two maps), so it must be even, got ${numAttentionHeads}`,
    );
  }
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw fail(
      'num_key_value_heads',
      `num_attention_heads (${numAttentionHeads}) must be a multiple of it, got ${numKeyValueHeads}`,
    );
  }
  if (headDim % 2 !== 0) throw fail('head_dim', `rotary embedding needs an even head width, got ${headDim}`);
  const eps = json.rms_norm_eps ?? 1e-5;
  if (typeof eps !== 'number' || !(eps >= 0))
    throw fail('rms_norm_eps', `expected a number ≥ 0, got ${JSON.stringify(eps)}`);
  const act = json.hidden_act ?? 'silu';
  if (act !== 'silu')
    throw new UnsupportedCheckpointError(
      file,
      `hidden_act ${String(act)}`,
      `hidden_act ${JSON.stringify(act)} is not supported; the SwiGLU feed-forward needs "silu"`,
    );
  if (json.attention_bias === true) {
    throw new UnsupportedCheckpointError(
      file,
      'attention_bias',
      'attention_bias true (biases on q/k/v/o projections) is not supported; the graph has bias-free projections',
    );
  }
  if (json.mlp_bias === true)
    throw new UnsupportedCheckpointError(
      file,
      'mlp_bias',
      'mlp_bias true is not supported; the feed-forward is bias-free',
    );
  const partial = json.partial_rotary_factor ?? 1;
  if (partial !== 1)
    throw new UnsupportedCheckpointError(
      file,
      'partial_rotary_factor',
      `partial_rotary_factor ${JSON.stringify(partial)} is not supported (only 1)`,
    );
  const tie = json.tie_word_embeddings ?? false;
  if (typeof tie !== 'boolean') throw fail('tie_word_embeddings', `expected true or false, got ${JSON.stringify(tie)}`);
  const maxPositionEmbeddings = int('max_position_embeddings', 2048);
  const rope = diffLlamaRope(json, file, headDim, maxPositionEmbeddings);
  return {
    vocabSize: int('vocab_size'),
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    numLayers: int('num_hidden_layers'),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    rmsNormEps: eps,
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    tieWordEmbeddings: tie,
    maxPositionEmbeddings,
  };
}

/**
 * θ and the RoPE scaling from `rope_parameters` ({rope_type, rope_theta, …}, transformers ≥ 5) or the
 * older `rope_theta` + `rope_scaling` (with the legacy `type` key), read as transformers 5 reads them:
 * `original_max_position_embeddings` falls back to a top-level field of that name, then to
 * max_position_embeddings; dynamic NTK scales from max_position_embeddings. (transformers 4.x derived
 * YaRN's factor from those lengths when both were present; 5 uses the factor written, as we do.)
 * An unknown type is refused by name.
 */
function diffLlamaRope(
  json: Record<string, unknown>,
  file: string,
  headDim: number,
  maxPositionEmbeddings: number,
): { theta: number; scaling: RopeScaling } {
  const params = json.rope_parameters;
  let theta: unknown = json.rope_theta ?? 10000;
  let scaling: unknown = json.rope_scaling ?? null;
  let field = 'rope_scaling';
  if (params !== undefined && params !== null) {
    if (typeof params !== 'object' || Array.isArray(params))
      throw new CheckpointConfigError(file, 'rope_parameters', 'expected an object {rope_type, rope_theta, …}');
    const p = params as Record<string, unknown>;
    // transformers ≥ 5 reads rope_parameters alone; a legacy rope_scaling beside it would be dropped unseen.
    const legacy = json.rope_scaling;
    if (legacy !== undefined && legacy !== null && !isPlainDefaultRope(legacy, p.rope_theta)) {
      throw new CheckpointConfigError(
        file,
        'rope_scaling',
        `the legacy rope_scaling ${JSON.stringify(legacy)} is given beside rope_parameters ` +
          `${JSON.stringify(params)}; only one may say how positions are scaled (transformers ≥ 5 reads ` +
          'rope_parameters): move its fields into rope_parameters and remove rope_scaling',
      );
    }
    if (!('rope_theta' in p) && !('rope_type' in p) && !('type' in p)) {
      throw new UnsupportedCheckpointError(
        file,
        'rope_parameters per layer type',
        `rope_parameters by layer type (${Object.keys(p).join(', ')}) is not supported`,
      );
    }
    theta = p.rope_theta ?? theta;
    scaling = p;
    field = 'rope_parameters';
  }
  if (typeof theta !== 'number' || !(theta > 0) || !Number.isFinite(theta)) {
    throw new CheckpointConfigError(
      file,
      `${field === 'rope_parameters' ? 'rope_parameters.' : ''}rope_theta`,
      `expected a positive number, got ${JSON.stringify(theta)}`,
    );
  }
  if (scaling === null) return { theta, scaling: { type: 'default' } };
  if (typeof scaling !== 'object' || Array.isArray(scaling))
    throw new CheckpointConfigError(file, field, 'expected an object or null');
  const s = scaling as Record<string, unknown>;
  const type = s.rope_type ?? s.type ?? 'default';
  if (!ROPE_TYPES.includes(type as never)) {
    throw new UnsupportedCheckpointError(
      file,
      `rope type ${String(type)}`,
      `${field}.rope_type ${JSON.stringify(type)} is not supported; ` +
        `supported: ${ROPE_TYPES.map((t) => JSON.stringify(t)).join(', ')}`,
    );
  }
  const missing = (REQUIRED_ROPE_KEYS[type as keyof typeof REQUIRED_ROPE_KEYS] ?? []).filter(
    (key) => s[key] === undefined,
  );
  if (missing.length) {
    throw new CheckpointConfigError(
      file,
      `${field}.${missing[0]}`,
      `rope_type ${JSON.stringify(type)} needs ${missing.join(', ')}, which ${field} does not give`,
    );
  }
  const original = json.original_max_position_embeddings ?? s.original_max_position_embeddings ?? maxPositionEmbeddings;
  const given = (key: string) => (s[key] === null ? undefined : s[key]);
  let input: Record<string, unknown>;
  switch (type as RopeScalingInput['type']) {
    case 'default':
      input = { type: 'default' };
      break;
    case 'linear':
      input = { type: 'linear', factor: s.factor };
      break;
    case 'dynamic':
      input = { type: 'dynamic', factor: s.factor, originalMaxPositions: maxPositionEmbeddings };
      break;
    case 'yarn':
      input = {
        type: 'yarn',
        factor: given('factor') ?? maxPositionEmbeddings / (original as number),
        originalMaxPositions: original,
        attentionFactor: given('attention_factor'),
        mscale: given('mscale'),
        mscaleAllDim: given('mscale_all_dim'),
        // transformers: `beta_fast or 32`, `beta_slow or 1`
        betaFast: s.beta_fast || undefined,
        betaSlow: s.beta_slow || undefined,
        truncate: given('truncate'),
      };
      break;
    case 'longrope':
      input = {
        type: 'longrope',
        shortFactor: s.short_factor,
        longFactor: s.long_factor,
        originalMaxPositions: original,
        attentionFactor: given('attention_factor'),
        factor: given('factor') ?? maxPositionEmbeddings / (original as number),
      };
      break;
    case 'llama3':
      input = {
        type: 'llama3',
        factor: s.factor,
        lowFreqFactor: s.low_freq_factor,
        highFreqFactor: s.high_freq_factor,
        originalMaxPositions: original,
      };
      break;
  }
  for (const key of Object.keys(input)) if (input[key] === undefined) delete input[key];
  const resolved = resolveRopeScaling(input, headDim);
  if (resolved.scaling === null) {
    const [first] = resolved.problems;
    const hfName =
      first.field === 'originalMaxPositions' && json.original_max_position_embeddings !== undefined
        ? 'original_max_position_embeddings'
        : first.field === 'originalMaxPositions' && type === 'dynamic'
          ? 'max_position_embeddings'
          : `${field}.${HF_ROPE_NAMES[first.field] ?? first.field}`;
    // Our field names in the messages become config.json's.
    const hf = (text: string) => text.replace(/\b[a-z]+[A-Z]\w*\b/g, (name) => HF_ROPE_NAMES[name] ?? name);
    const messages = resolved.problems.map((p, i) => (i === 0 ? p.message : `${hf(p.field)}: ${p.message}`));
    throw new CheckpointConfigError(file, hfName, hf(messages.join('; ')));
  }
  return { theta, scaling: resolved.scaling };
}

/** Keys transformers 5 requires of each rope_type (its _validate_*_rope_parameters). */
const REQUIRED_ROPE_KEYS = {
  linear: ['factor'],
  dynamic: ['factor'],
  yarn: ['factor'],
  longrope: ['short_factor', 'long_factor'],
  llama3: ['factor', 'low_freq_factor', 'high_freq_factor'],
} as const;

/** Our scaling fields by their config.json names. */
const HF_ROPE_NAMES: Record<string, string> = {
  factor: 'factor',
  originalMaxPositions: 'original_max_position_embeddings',
  attentionFactor: 'attention_factor',
  mscale: 'mscale',
  mscaleAllDim: 'mscale_all_dim',
  betaFast: 'beta_fast',
  betaSlow: 'beta_slow',
  truncate: 'truncate',
  shortFactor: 'short_factor',
  longFactor: 'long_factor',
  lowFreqFactor: 'low_freq_factor',
  highFreqFactor: 'high_freq_factor',
};

/** rope_parameters (transformers 5 spelling) for a scaling. */
function ropeParametersJson(theta: number, scaling: RopeScaling): Record<string, unknown> {
  const out: Record<string, unknown> = { rope_type: scaling.type, rope_theta: theta };
  for (const [key, value] of Object.entries(scaling)) {
    if (key === 'type' || (scaling.type === 'dynamic' && key === 'originalMaxPositions')) continue;
    out[HF_ROPE_NAMES[key]] = Array.isArray(value) ? [...value] : value;
  }
  return out;
}

/**
 * Configs that declare `DiffLlamaForCausalLM` with model_type "diff_llama" (e.g.
 * peihaowang/diff-transformer-410m-…, which adds `attn_family`) come from their authors' own modeling
 * code, not transformers' DiffLlama: refused by name rather than read as something they are not.
 */
export function refuseDiffLlamaVariant(json: Record<string, unknown>, file: string): never {
  const family = json.attn_family !== undefined ? ` with attn_family ${JSON.stringify(json.attn_family)}` : '';
  throw new UnsupportedCheckpointError(
    file,
    'model_type diff_llama',
    `model_type "diff_llama"${family} is not transformers' DiffLlama (model_type "diffllama"), although ` +
      "its architectures say DiffLlamaForCausalLM: it belongs to its authors' own modeling code, which " +
      'transformers does not ship, and attn_family names the attention family that code runs (a choice ' +
      "transformers' DiffLlama does not have). What its tensors mean is defined by that code, not by " +
      'transformers, so it is refused rather than guessed; folders with model_type "diffllama" (or this ' +
      "project's own format) load",
  );
}

/** A rope_scaling that asks for nothing: the default type, and no θ other than `theta`. */
function isPlainDefaultRope(scaling: unknown, theta: unknown): boolean {
  if (typeof scaling !== 'object' || scaling === null || Array.isArray(scaling)) return false;
  const entries = Object.entries(scaling as Record<string, unknown>);
  return entries.every(
    ([key, value]) =>
      ((key === 'rope_type' || key === 'type') && value === 'default') || (key === 'rope_theta' && value === theta),
  );
}

/** Our graph's config for a DiffLlama: H/2 differential heads, half-layout rotary, no subln weight. */
export function diffLlamaModelConfig(dims: DiffLlamaDims, file: string): ModelConfig {
  const heads = dims.numAttentionHeads / 2;
  const input: ModelConfigInput = {
    vocabSize: dims.vocabSize,
    hiddenSize: dims.hiddenSize,
    numLayers: dims.numLayers,
    numHeads: heads,
    numKvHeads: dims.numKeyValueHeads % 2 === 0 ? dims.numKeyValueHeads / 2 : heads,
    headDim: dims.headDim,
    intermediateSize: dims.intermediateSize,
    attention: 'differential',
    // Tables in float64, not PyTorch's float32. Against transformers' float64 oracle (fixtures/diffllama/
    // tiny-gqa) both give NMSE 1.89e-13 on the cpu backend, and 5.37e-15 vs 5.38e-15 in the float64
    // reference: at its 23 positions they differ by < 1e-6. Where they part, at long positions (up to
    // 9.3e-3 by position 131071, θ 500000), that is float32 round-off of the angle p·inv_j (24 bits of
    // a number up to 1.3e5), not part of the model: the exact formula is the better-defined target.
    rope: { theta: dims.ropeTheta, layout: 'half', precision: 'float64', scaling: dims.ropeScaling },
    normEps: dims.rmsNormEps,
    subLayerNorm: { eps: dims.rmsNormEps, affine: false },
    tieWordEmbeddings: dims.tieWordEmbeddings,
    maxPositions: Math.min(dims.maxPositionEmbeddings, 4096),
  };
  try {
    return resolveConfig(input);
  } catch (error) {
    if (error instanceof ConfigError) throw new CheckpointConfigError(file, null, error.message, { cause: error });
    throw error;
  }
}

/** Every tensor a DiffLlama checkpoint holds, with its shape, in HF names. */
export function diffLlamaParameterShapes(dims: DiffLlamaDims): Map<string, number[]> {
  const {
    hiddenSize: e,
    intermediateSize: f,
    vocabSize: v,
    numAttentionHeads: h,
    numKeyValueHeads: hkv,
    headDim: d,
  } = dims;
  const shapes = new Map<string, number[]>();
  shapes.set('model.embed_tokens.weight', [v, e]);
  for (let i = 0; i < dims.numLayers; i++) {
    const p = `model.layers.${i}`;
    shapes.set(`${p}.input_layernorm.weight`, [e]);
    shapes.set(`${p}.self_attn.q_proj.weight`, [h * d, e]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [hkv * d, e]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [hkv * d, e]);
    shapes.set(`${p}.self_attn.o_proj.weight`, [e, h * d]);
    for (const name of ['lambda_q1', 'lambda_k1', 'lambda_q2', 'lambda_k2']) shapes.set(`${p}.self_attn.${name}`, [d]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [e]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [f, e]);
    shapes.set(`${p}.mlp.up_proj.weight`, [f, e]);
    shapes.set(`${p}.mlp.down_proj.weight`, [e, f]);
  }
  shapes.set('model.norm.weight', [e]);
  if (!dims.tieWordEmbeddings) shapes.set('lm_head.weight', [v, e]);
  return shapes;
}

/** Tensors a DiffLlama file may hold that hold nothing the graph needs (ignored on load). */
export function isIgnorableDiffLlamaTensor(name: string, dims: DiffLlamaDims): boolean {
  return name.endsWith('.rotary_emb.inv_freq') || (dims.tieWordEmbeddings && name === 'lm_head.weight');
}

/** Which HF heads feed our query half-heads, key half-heads and value heads (see the file comment). */
export function diffLlamaHeadMap(
  dims: DiffLlamaDims,
  config: ModelConfig,
): { q: number[]; k: number[]; v: number[][] } {
  const h = dims.numAttentionHeads;
  const n = h / dims.numKeyValueHeads;
  const heads = config.numHeads;
  const groups = config.numKvHeads;
  const q: number[] = [];
  for (let i = 0; i < heads; i++) q.push(i, h / 2 + i);
  const k: number[] = [];
  const v: number[][] = [];
  for (let g = 0; g < groups; g++) {
    const first = (g * heads) / groups;
    const map1 = Math.floor(first / n);
    const map2 = Math.floor((h / 2 + first) / n);
    k.push(map1, map2);
    v.push([map1, map2]);
  }
  return { q, k, v };
}

/** Rows [head·width, (head+1)·width) of each listed head, concatenated: a [heads·width, cols] matrix. */
function gatherHeads(source: Float32Array, cols: number, width: number, heads: readonly number[]): Float32Array {
  const out = new Float32Array(heads.length * width * cols);
  heads.forEach((head, i) => {
    out.set(source.subarray(head * width * cols, (head + 1) * width * cols), i * width * cols);
  });
  return out;
}

/** Our parameters (names and layout of parameterShapes) from DiffLlama's, permuting q/k/v rows. */
export function fromDiffLlamaParameters(
  dims: DiffLlamaDims,
  config: ModelConfig,
  hf: ReadonlyMap<string, HostTensor>,
): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  const get = (name: string) => hf.get(name)!;
  const e = dims.hiddenSize;
  const d = dims.headDim;
  const map = diffLlamaHeadMap(dims, config);
  out.set('embed_tokens.weight', get('model.embed_tokens.weight'));
  for (let i = 0; i < dims.numLayers; i++) {
    const from = `model.layers.${i}`;
    const to = `layers.${i}`;
    out.set(`${to}.attn_norm.weight`, get(`${from}.input_layernorm.weight`));
    const q = get(`${from}.self_attn.q_proj.weight`).data;
    const k = get(`${from}.self_attn.k_proj.weight`).data;
    const v = get(`${from}.self_attn.v_proj.weight`).data;
    out.set(`${to}.attn.q_proj.weight`, { shape: [map.q.length * d, e], data: gatherHeads(q, e, d, map.q) });
    out.set(`${to}.attn.k_proj.weight`, { shape: [map.k.length * d, e], data: gatherHeads(k, e, d, map.k) });
    out.set(`${to}.attn.v_proj.weight`, { shape: [map.v.length * 2 * d, e], data: gatherHeads(v, e, d, map.v.flat()) });
    out.set(`${to}.attn.out_proj.weight`, get(`${from}.self_attn.o_proj.weight`));
    for (const name of ['lambda_q1', 'lambda_k1', 'lambda_q2', 'lambda_k2'])
      out.set(`${to}.attn.${name}`, get(`${from}.self_attn.${name}`));
    out.set(`${to}.ffn_norm.weight`, get(`${from}.post_attention_layernorm.weight`));
    for (const name of ['gate_proj', 'up_proj', 'down_proj'])
      out.set(`${to}.ffn.${name}.weight`, get(`${from}.mlp.${name}.weight`));
  }
  out.set('norm.weight', get('model.norm.weight'));
  if (!config.tieWordEmbeddings) out.set('lm_head.weight', get('lm_head.weight'));
  return out;
}

/**
 * The inverse: a DiffLlama config.json and HF-named tensors for one of our models. Possible when the
 * model uses what DiffLlama has: differential attention, half-layout rotary, no subln weight, one eps.
 * Our G kv groups become 2G HF kv heads (the pure-permutation case above).
 */
export function toDiffLlama(
  config: ModelConfig,
  parameters: ReadonlyMap<string, HostTensor>,
): { config: DiffLlamaConfigJson; tensors: Map<string, HostTensor> } {
  const problems: string[] = [];
  if (config.attention !== 'differential')
    problems.push(`attention '${config.attention}' (DiffLlama is 'differential')`);
  if (config.rope.layout !== 'half') problems.push(`rope.layout '${config.rope.layout}' (DiffLlama rotates halves)`);
  const subln = config.subLayerNorm;
  if (subln === null) problems.push('subLayerNorm null (DiffLlama always has its per-head norm)');
  if (subln?.affine) problems.push('subLayerNorm.affine true (DiffLlama has no subln weight)');
  if (subln && subln.eps !== config.normEps)
    problems.push(`subLayerNorm.eps ${subln.eps} ≠ normEps ${config.normEps} (DiffLlama has one rms_norm_eps)`);
  if (config.lambdaInit !== 'depth')
    problems.push(`lambdaInit ${config.lambdaInit} (DiffLlama computes λinit from the depth)`);
  if (config.lambdaParameterization !== 'reparameterized')
    problems.push(`lambdaParameterization '${config.lambdaParameterization}' (DiffLlama learns four λ vectors)`);
  if (problems.length)
    throw new UnsupportedCheckpointError(
      'config.json',
      'diffllama export',
      `this model cannot be written as DiffLlama: ${problems.join('; ')}`,
    );
  const json: DiffLlamaConfigJson = {
    architectures: ['DiffLlamaForCausalLM'],
    model_type: 'diffllama',
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: 2 * config.numHeads,
    num_key_value_heads: 2 * config.numKvHeads,
    head_dim: config.headDim,
    hidden_act: 'silu',
    // dynamic NTK scales from max_position_embeddings: it must be the original length.
    max_position_embeddings:
      config.rope.scaling.type === 'dynamic' ? config.rope.scaling.originalMaxPositions : config.maxPositions,
    rms_norm_eps: config.normEps,
    tie_word_embeddings: config.tieWordEmbeddings,
    rope_parameters: ropeParametersJson(config.rope.theta, config.rope.scaling),
    attention_bias: false,
    attention_dropout: 0,
  };
  const dims = diffLlamaDims(json, 'config.json');
  const map = diffLlamaHeadMap(dims, config);
  const e = config.hiddenSize;
  const d = config.headDim;
  const scatter = (ours: Float32Array, heads: readonly number[], total: number) => {
    const out = new Float32Array(total * d * e);
    heads.forEach((head, i) => {
      out.set(ours.subarray(i * d * e, (i + 1) * d * e), head * d * e);
    });
    return out;
  };
  const get = (name: string) => parameters.get(name)!;
  const tensors = new Map<string, HostTensor>();
  tensors.set('model.embed_tokens.weight', get('embed_tokens.weight'));
  for (let i = 0; i < config.numLayers; i++) {
    const from = `layers.${i}`;
    const to = `model.layers.${i}`;
    tensors.set(`${to}.input_layernorm.weight`, get(`${from}.attn_norm.weight`));
    const h = dims.numAttentionHeads;
    const hkv = dims.numKeyValueHeads;
    tensors.set(`${to}.self_attn.q_proj.weight`, {
      shape: [h * d, e],
      data: scatter(get(`${from}.attn.q_proj.weight`).data, map.q, h),
    });
    tensors.set(`${to}.self_attn.k_proj.weight`, {
      shape: [hkv * d, e],
      data: scatter(get(`${from}.attn.k_proj.weight`).data, map.k, hkv),
    });
    tensors.set(`${to}.self_attn.v_proj.weight`, {
      shape: [hkv * d, e],
      data: scatter(get(`${from}.attn.v_proj.weight`).data, map.v.flat(), hkv),
    });
    tensors.set(`${to}.self_attn.o_proj.weight`, get(`${from}.attn.out_proj.weight`));
    for (const name of ['lambda_q1', 'lambda_k1', 'lambda_q2', 'lambda_k2'])
      tensors.set(`${to}.self_attn.${name}`, get(`${from}.attn.${name}`));
    tensors.set(`${to}.post_attention_layernorm.weight`, get(`${from}.ffn_norm.weight`));
    for (const name of ['gate_proj', 'up_proj', 'down_proj'])
      tensors.set(`${to}.mlp.${name}.weight`, get(`${from}.ffn.${name}.weight`));
  }
  tensors.set('model.norm.weight', get('norm.weight'));
  if (!config.tieWordEmbeddings) tensors.set('lm_head.weight', get('lm_head.weight'));
  return { config: json, tensors };
}
