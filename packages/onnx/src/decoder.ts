/**
 * The decoder as one ONNX graph with its KV cache as inputs and outputs, in the layout ONNX Runtime's
 * generation loop (onnxruntime-genai) and Hugging Face Optimum use:
 *
 *   input_ids [batch, sequence], attention_mask [batch, total], position_ids [batch, sequence],
 *   past_key_values.N.key / .value [batch, kv heads, past, head size]
 *     → logits [batch, sequence, vocab], present.N.key / .value [batch, kv heads, total, head size]
 *
 * Standard ops of ai.onnx opset 17 only, so every ONNX Runtime (CPU, CUDA, DirectML, WebGPU, WASM) and
 * ONNX's own checker take it. Differential attention is written as the paper states it (Ye et al. 2025,
 * eq. 1): both softmax maps, A₁ − λ·A₂, then (V1) the per-head RMSNorm and (1 − λinit).
 *
 * Cache layout per variant (key and value share one shape, as onnxruntime-genai allocates them):
 *   differential (V1)  [B, 2·Hkv, S, d]: keys are the half-heads; value head j (width 2d) is stored as
 *                      its two halves, rows 2j and 2j+1
 *   differential-v2    [B, Hkv, S, d]
 *   standard           [B, Hkv, S, d]
 */
import { type HostTensor, layerLambdaInit, type ModelConfig, rotaryTablesOnHost } from '@diff-transformer/core';
import { lazyBytes, OnnxGraph } from './graph.js';
import { type WeightDType, WeightWriter } from './weights.js';

/** The ai.onnx opset the graph imports, and the IR version of ONNX 1.12 (which introduced opset 17). */
export const OPSET = 17;
export const IR_VERSION = 8;

export interface DecoderGraphOptions {
  readonly dtype?: WeightDType;
  /** Rows of the rotary tables, the longest context the graph serves (default: the config's maxPositions). */
  readonly maxPositions?: number;
}

/** What a runtime needs to know about the graph's cache (genai_config.json, Triton's config.pbtxt). */
export interface DecoderInterface {
  readonly layers: number;
  /** Query heads as the attention computes them (2H half-heads for DIFF V1, 2H for V2, H for the baseline). */
  readonly attentionHeads: number;
  readonly kvHeads: number;
  readonly headSize: number;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly maxPositions: number;
}

export const INPUT_NAMES = {
  inputIds: 'input_ids',
  attentionMask: 'attention_mask',
  positionIds: 'position_ids',
  pastKey: (layer: number) => `past_key_values.${layer}.key`,
  pastValue: (layer: number) => `past_key_values.${layer}.value`,
} as const;

export const OUTPUT_NAMES = {
  logits: 'logits',
  presentKey: (layer: number) => `present.${layer}.key`,
  presentValue: (layer: number) => `present.${layer}.value`,
} as const;

/** The symbolic axes, named as Optimum and the model builder name them. */
const BATCH = 'batch_size';
const SEQUENCE = 'sequence_length';
const PAST = 'past_sequence_length';
const TOTAL = 'total_sequence_length';

/** The most negative float32: a masked score that still leaves a fully masked row finite. */
const MASKED = -3.4028234663852886e38;

/**
 * RoPE scalings whose tables depend on the position alone: the graph gathers rows of one fixed table.
 * Dynamic NTK and LongRoPE change the frequencies with the length of each forward, which a table of
 * constants cannot hold.
 */
const STATIC_ROPE_SCALINGS = new Set(['default', 'linear', 'yarn', 'llama3']);

/** What of this config the ONNX graph cannot represent, one entry each (empty: it exports). */
export function onnxProblems(config: ModelConfig): string[] {
  const problems: string[] = [];
  const { type } = config.rope.scaling;
  if (!STATIC_ROPE_SCALINGS.has(type)) {
    problems.push(
      `rope.scaling.type ${JSON.stringify(type)} (its frequencies change with the length of each forward; ` +
        `the graph holds fixed tables, for ${[...STATIC_ROPE_SCALINGS].map((t) => JSON.stringify(t)).join(', ')})`,
    );
  }
  return problems;
}

export function decoderInterface(config: ModelConfig, maxPositions = config.maxPositions): DecoderInterface {
  const { numHeads: h, numKvHeads: hkv, headDim: d } = config;
  const [attentionHeads, kvHeads] =
    config.attention === 'differential'
      ? [2 * h, 2 * hkv]
      : config.attention === 'differential-v2'
        ? [2 * h, hkv]
        : [h, hkv];
  return {
    layers: config.numLayers,
    attentionHeads,
    kvHeads,
    headSize: d,
    vocabSize: config.vocabSize,
    hiddenSize: config.hiddenSize,
    maxPositions,
  };
}

/** The decoder graph of a model given by its config and host parameters (names as core's). */
export function decoderGraph(
  config: ModelConfig,
  parameters: ReadonlyMap<string, HostTensor>,
  options: DecoderGraphOptions = {},
): { graph: OnnxGraph; io: DecoderInterface } {
  const io = decoderInterface(config, options.maxPositions ?? config.maxPositions);
  const builder = new DecoderBuilder(config, parameters, options.dtype ?? 'float32', io);
  return { graph: builder.build(), io };
}

/** Per-forward values every layer shares. */
interface Shared {
  readonly cos: string;
  readonly sin: string;
  /** Additive mask [B, 1, 1, (1,) T, S]: 0 where a query may see a key, MASKED elsewhere. */
  readonly bias: string;
}

class DecoderBuilder {
  readonly g = new OnnxGraph('diff-transformer decoder');
  readonly weights: WeightWriter;

  constructor(
    readonly config: ModelConfig,
    readonly parameters: ReadonlyMap<string, HostTensor>,
    dtype: WeightDType,
    readonly io: DecoderInterface,
  ) {
    this.weights = new WeightWriter(this.g, dtype);
  }

  build(): OnnxGraph {
    const { g, config, io } = this;
    const ids = g.input(INPUT_NAMES.inputIds, 'int64', [BATCH, SEQUENCE]);
    const mask = g.input(INPUT_NAMES.attentionMask, 'int64', [BATCH, TOTAL]);
    const positions = g.input(INPUT_NAMES.positionIds, 'int64', [BATCH, SEQUENCE]);
    // Outputs in Optimum's order: logits, then each layer's present key and value (declared as made).
    g.output(OUTPUT_NAMES.logits, 'float32', [BATCH, SEQUENCE, config.vocabSize]);
    const cacheDims = [BATCH, io.kvHeads, PAST, io.headSize];
    const past = Array.from({ length: config.numLayers }, (_, i) => ({
      key: g.input(INPUT_NAMES.pastKey(i), 'float32', cacheDims),
      value: g.input(INPUT_NAMES.pastValue(i), 'float32', cacheDims),
    }));

    const embedding = this.param('embed_tokens.weight');
    let x = this.weights.embedding(ids, 'embed_tokens.weight', embedding);
    const shared = { ...this.rotary(positions), bias: this.attentionBias(ids, mask, past[0].key) };
    for (let i = 0; i < config.numLayers; i++) {
      const prefix = `layers.${i}`;
      const h = this.rmsNorm(x, this.vectorParam(`${prefix}.attn_norm.weight`), config.normEps, `${prefix}.attn_norm`);
      const attention = this.attention(h, i, past[i], shared);
      x = g.node('Add', [x, attention], {}, { name: `${prefix}.attn_residual` });
      const m = this.rmsNorm(x, this.vectorParam(`${prefix}.ffn_norm.weight`), config.normEps, `${prefix}.ffn_norm`);
      x = g.node('Add', [x, this.feedForward(m, `${prefix}.ffn`)], {}, { name: `${prefix}.ffn_residual` });
    }
    const normed = this.rmsNorm(x, this.vectorParam('norm.weight'), config.normEps, 'norm');
    const logits = config.tieWordEmbeddings
      ? this.weights.tiedLinear(normed, 'embed_tokens.weight', 'lm_head')
      : this.weights.linear(normed, 'lm_head', this.param('lm_head.weight'));
    g.node(
      'Reshape',
      [logits, g.int64([0, 0, config.vocabSize])],
      {},
      { outputs: [OUTPUT_NAMES.logits], name: 'logits' },
    );
    return g;
  }

  param(name: string): HostTensor {
    const p = this.parameters.get(name);
    if (!p) throw new RangeError(`ONNX export: the parameter '${name}' is missing`);
    return p;
  }

  vectorParam(name: string): string {
    return this.weights.vector(name, this.param(name));
  }

  /** y = x / √(mean(x²) + eps) · weight — the pattern ONNX Runtime fuses into one normalisation kernel. */
  rmsNorm(x: string, weight: string | null, eps: number, name: string): string {
    const { g } = this;
    const squares = g.node('Pow', [x, g.float32([2], [])], {}, { name });
    const mean = g.node('ReduceMean', [squares], { axes: [-1], keepdims: 1 }, { name });
    const rms = g.node('Sqrt', [g.node('Add', [mean, g.float32([eps], [])], {}, { name })], {}, { name });
    const normalised = g.node('Div', [x, rms], {}, { name });
    return weight ? g.node('Mul', [normalised, weight], {}, { name }) : normalised;
  }

  /**
   * cos and sin [B, T, 1, d/2] of each token's position (position_ids), gathered from this model's
   * own tables (core's rotaryTablesOnHost, the ones its rotary kernel reads), scaling included.
   */
  rotary(positions: string): { cos: string; sin: string } {
    const { g, config, io } = this;
    const half = config.headDim / 2;
    const { cos, sin } = rotaryTablesOnHost(
      {
        dim: config.headDim,
        theta: config.rope.theta,
        scaling: config.rope.scaling,
        precision: config.rope.precision,
      },
      io.maxPositions,
    );
    const table = (name: string, values: Float32Array) =>
      g.initializer(
        name,
        'float32',
        [io.maxPositions, half],
        lazyBytes(values.byteLength, () => new Uint8Array(values.buffer)),
      );
    const gather = (name: string, values: Float32Array) =>
      g.node(
        'Unsqueeze',
        [g.node('Gather', [table(name, values), positions], { axis: 0 }, { name }), g.int64([2])],
        {},
        { name },
      );
    return { cos: gather('rotary.cos', cos), sin: gather('rotary.sin', sin) };
  }

  /** Rotates heads x [B, T, n, d] by position; pairs (2j, 2j+1) when interleaved, (j, j + d/2) in the half layout. */
  rope(x: string, heads: number, shared: Shared, name: string): string {
    const { g, config } = this;
    const d = config.headDim;
    if (config.rope.layout === 'half') {
      const [a, b] = g.node('Split', [x, g.int64([d / 2, d / 2])], { axis: -1 }, { outputs: 2, name });
      const first = g.node(
        'Sub',
        [g.node('Mul', [a, shared.cos], {}, { name }), g.node('Mul', [b, shared.sin], {}, { name })],
        {},
        { name },
      );
      const second = g.node(
        'Add',
        [g.node('Mul', [b, shared.cos], {}, { name }), g.node('Mul', [a, shared.sin], {}, { name })],
        {},
        { name },
      );
      return g.node('Concat', [first, second], { axis: -1 }, { name });
    }
    const pairs = g.node('Reshape', [x, g.int64([0, 0, heads, d / 2, 2])], {}, { name });
    const [a, b] = g.node('Split', [pairs, g.int64([1, 1])], { axis: -1 }, { outputs: 2, name });
    const cos = g.node('Unsqueeze', [shared.cos, g.int64([-1])], {}, { name });
    const sin = g.node('Unsqueeze', [shared.sin, g.int64([-1])], {}, { name });
    const first = g.node(
      'Sub',
      [g.node('Mul', [a, cos], {}, { name }), g.node('Mul', [b, sin], {}, { name })],
      {},
      { name },
    );
    const second = g.node(
      'Add',
      [g.node('Mul', [b, cos], {}, { name }), g.node('Mul', [a, sin], {}, { name })],
      {},
      { name },
    );
    const rotated = g.node('Concat', [first, second], { axis: -1 }, { name });
    return g.node('Reshape', [rotated, g.int64([0, 0, heads, d])], {}, { name });
  }

  /**
   * The additive mask of every layer: query t (at cache position P + t, P the past length) may see key
   * s when s ≤ P + t (causal) and attention_mask[b, s] is 1 (not padding). Shaped to broadcast against
   * the scores: [B, 1, 1, 1, T, S] for the differential variants, [B, 1, 1, T, S] for the baseline.
   */
  attentionBias(ids: string, mask: string, pastKey: string): string {
    const { g, config } = this;
    const name = 'attention_bias';
    const scalar = (shape: string) => g.node('Squeeze', [shape, g.int64([0])], {}, { name });
    const pastLength = scalar(g.node('Shape', [pastKey], { start: 2, end: 3 }, { name }));
    const newLength = scalar(g.node('Shape', [ids], { start: 1, end: 2 }, { name }));
    const totalLength = g.node('Add', [pastLength, newLength], {}, { name });
    const one = g.int64([1], []);
    const keys = g.node('Range', [g.int64([0], []), totalLength, one], {}, { name: 'key_positions' });
    const queries = g.node('Range', [pastLength, totalLength, one], {}, { name: 'query_positions' });
    const causal = g.node(
      'LessOrEqual',
      [
        g.node('Unsqueeze', [keys, g.int64([0])], {}, { name }),
        g.node('Unsqueeze', [queries, g.int64([1])], {}, { name }),
      ],
      {},
      { name: 'causal' },
    );
    const notPadding = g.node('Unsqueeze', [g.node('Cast', [mask], { to: 9 }, { name }), g.int64([1])], {}, { name });
    const visible = g.node('And', [causal, notPadding], {}, { name: 'visible' });
    const bias = g.node('Where', [visible, g.float32([0], []), g.float32([MASKED], [])], {}, { name });
    const axes = config.attention === 'standard' ? [1, 2] : [1, 2, 3];
    return g.node('Unsqueeze', [bias, g.int64(axes)], {}, { name });
  }

  /** Heads [B, T, n·w] → [B, n, T, w], after rotary when `rotate`. */
  heads(x: string, n: number, shared: Shared | null, name: string): string {
    const { g, config } = this;
    let heads = g.node('Reshape', [x, g.int64([0, 0, n, config.headDim])], {}, { name });
    if (shared) heads = this.rope(heads, n, shared, `${name}.rope`);
    return g.node('Transpose', [heads], { perm: [0, 2, 1, 3] }, { name });
  }

  /** The new keys or values appended to the cache along its sequence axis; the result is a graph output. */
  appendToCache(past: string, current: string, output: string): string {
    const { g, io } = this;
    g.node('Concat', [past, current], { axis: 2 }, { outputs: [output], name: output });
    g.output(output, 'float32', [BATCH, io.kvHeads, TOTAL, io.headSize]);
    return output;
  }

  /** softmax(scale·scores + bias) over the keys. */
  softmax(q: string, keys: string, name: string, shared: Shared): string {
    const { g, config } = this;
    const rank = config.attention === 'standard' ? 5 : 6;
    const perm = Array.from({ length: rank }, (_, i) => i);
    [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
    const scores = g.node(
      'MatMul',
      [q, g.node('Transpose', [keys], { perm }, { name })],
      {},
      { name: `${name}.scores` },
    );
    const scaled = g.node('Mul', [scores, g.float32([1 / Math.sqrt(config.headDim)], [])], {}, { name });
    return g.node(
      'Softmax',
      [g.node('Add', [scaled, shared.bias], {}, { name })],
      { axis: -1 },
      { name: `${name}.probabilities` },
    );
  }

  attention(x: string, layer: number, past: { key: string; value: string }, shared: Shared): string {
    const { g, config } = this;
    const { numHeads: h, numKvHeads: hkv, headDim: d } = config;
    const group = h / hkv;
    const prefix = `layers.${layer}.attn`;
    const project = (name: string) =>
      this.weights.linear(x, `${prefix}.${name}`, this.param(`${prefix}.${name}.weight`));
    const out = (heads: string, width: number) =>
      this.weights.linear(
        g.node('Reshape', [heads, g.int64([0, 0, width])], {}, { name: `${prefix}.heads` }),
        `${prefix}.out_proj`,
        this.param(`${prefix}.out_proj.weight`),
      );

    if (config.attention === 'standard') {
      const q = this.heads(project('q_proj'), h, shared, `${prefix}.q`);
      const k = this.appendToCache(
        past.key,
        this.heads(project('k_proj'), hkv, shared, `${prefix}.k`),
        OUTPUT_NAMES.presentKey(layer),
      );
      const v = this.appendToCache(
        past.value,
        this.heads(project('v_proj'), hkv, null, `${prefix}.v`),
        OUTPUT_NAMES.presentValue(layer),
      );
      // Query head j·g + r attends with key/value head j: [B, Hkv, g, T, d] against [B, Hkv, 1, S, d].
      const qg = g.node('Reshape', [q, g.int64([0, hkv, group, -1, d])], {}, { name: `${prefix}.q` });
      const kg = g.node('Reshape', [k, g.int64([0, hkv, 1, -1, d])], {}, { name: `${prefix}.k` });
      const vg = g.node('Reshape', [v, g.int64([0, hkv, 1, -1, d])], {}, { name: `${prefix}.v` });
      const attended = g.node('MatMul', [this.softmax(qg, kg, prefix, shared), vg], {}, { name: prefix });
      const heads = g.node('Transpose', [attended], { perm: [0, 3, 1, 2, 4] }, { name: prefix });
      return out(heads, h * d);
    }

    // Both differential variants: half-heads 2i and 2i+1 are the two maps of head i = j·g + r, which
    // attends with key/value group j: queries [B, Hkv, g, 2, T, d].
    const v2 = config.attention === 'differential-v2';
    const q = this.heads(project('q_proj'), 2 * h, shared, `${prefix}.q`);
    const qg = g.node('Reshape', [q, g.int64([0, hkv, group, 2, -1, d])], {}, { name: `${prefix}.q` });
    const keyHeads = v2 ? hkv : 2 * hkv;
    const k = this.appendToCache(
      past.key,
      this.heads(project('k_proj'), keyHeads, shared, `${prefix}.k`),
      OUTPUT_NAMES.presentKey(layer),
    );
    const v = this.appendToCache(
      past.value,
      this.heads(project('v_proj'), keyHeads, null, `${prefix}.v`),
      OUTPUT_NAMES.presentValue(layer),
    );
    // V1: map m of group j uses key half-head 2j + m; V2: both maps share key head j.
    const kg = g.node(
      'Reshape',
      [k, g.int64(v2 ? [0, hkv, 1, 1, -1, d] : [0, hkv, 1, 2, -1, d])],
      {},
      { name: `${prefix}.k` },
    );
    const probabilities = this.softmax(qg, kg, prefix, shared);
    const [a1, a2] = g.node(
      'Split',
      [probabilities, g.int64([1, 1])],
      { axis: 3 },
      { outputs: 2, name: `${prefix}.maps` },
    );
    const lambda = v2 ? this.lambdaPerToken(x, layer) : this.lambda(layer);
    // DiffAttn = A₁ − λ·A₂, [B, Hkv, g, 1, T, S].
    const diff = g.node(
      'Sub',
      [a1, g.node('Mul', [a2, lambda], {}, { name: `${prefix}.lambda_a2` })],
      {},
      { name: `${prefix}.diff` },
    );
    if (v2) {
      // [B, Hkv, g, 1, T, S] · [B, Hkv, 1, 1, S, d] → [B, Hkv, g, 1, T, d] → [B, T, H·d].
      const vg = g.node('Reshape', [v, g.int64([0, hkv, 1, 1, -1, d])], {}, { name: `${prefix}.v` });
      const attended = g.node('MatMul', [diff, vg], {}, { name: prefix });
      const heads = g.node('Transpose', [attended], { perm: [0, 4, 1, 2, 3, 5] }, { name: prefix });
      return out(heads, h * d);
    }
    // V1: value head j's halves [B, Hkv, 1, 2, S, d]; the product's axis 3 indexes the half, so head i
    // comes out as [B, T, H, 2, d] = its 2d-wide output.
    const vg = g.node('Reshape', [v, g.int64([0, hkv, 1, 2, -1, d])], {}, { name: `${prefix}.v` });
    const attended = g.node('MatMul', [diff, vg], {}, { name: prefix });
    const heads = g.node(
      'Reshape',
      [g.node('Transpose', [attended], { perm: [0, 4, 1, 2, 3, 5] }, { name: prefix }), g.int64([0, 0, h, 2 * d])],
      {},
      { name: prefix },
    );
    const init = layerLambdaInit(config, layer);
    const subln = config.subLayerNorm;
    const normed = subln
      ? this.rmsNorm(
          heads,
          subln.affine ? this.vectorParam(`${prefix}.subln.weight`) : null,
          subln.eps,
          `${prefix}.subln`,
        )
      : heads;
    const scaled = g.node('Mul', [normed, g.float32([1 - init], [])], {}, { name: `${prefix}.one_minus_lambda_init` });
    return out(scaled, h * 2 * d);
  }

  /**
   * DIFF V1's λ of one layer, from its parameters in the graph (ONNX Runtime folds it to a constant):
   * exp(λq1·λk1) − exp(λq2·λk2) + λinit, or the learned scalar.
   */
  lambda(layer: number): string {
    const { g, config } = this;
    const prefix = `layers.${layer}.attn`;
    const name = `${prefix}.lambda`;
    if (config.lambdaParameterization === 'scalar') return this.vectorParam(`${prefix}.lambda`);
    const dot = (a: string, b: string) =>
      g.node(
        'ReduceSum',
        [g.node('Mul', [this.vectorParam(`${prefix}.${a}`), this.vectorParam(`${prefix}.${b}`)], {}, { name })],
        { keepdims: 1 },
        { name },
      );
    const difference = g.node(
      'Sub',
      [
        g.node('Exp', [dot('lambda_q1', 'lambda_k1')], {}, { name }),
        g.node('Exp', [dot('lambda_q2', 'lambda_k2')], {}, { name }),
      ],
      {},
      { name },
    );
    return g.node('Add', [difference, g.float32([layerLambdaInit(config, layer)], [])], {}, { name });
  }

  /** DIFF V2's λ = σ(x·W_λ) per token and head, shaped [B, Hkv, g, 1, T, 1] against the maps. */
  lambdaPerToken(x: string, layer: number): string {
    const { g, config } = this;
    const prefix = `layers.${layer}.attn`;
    const name = `${prefix}.lambda`;
    const lambda = g.node(
      'Sigmoid',
      [this.weights.linear(x, `${prefix}.lambda_proj`, this.param(`${prefix}.lambda_proj.weight`))],
      {},
      { name },
    );
    const perHead = g.node('Transpose', [lambda], { perm: [0, 2, 1] }, { name });
    return g.node(
      'Reshape',
      [perHead, g.int64([0, config.numKvHeads, config.numHeads / config.numKvHeads, 1, -1, 1])],
      {},
      { name },
    );
  }

  /** SwiGLU: W_down·(silu(W_gate·x) ⊙ W_up·x). */
  feedForward(x: string, prefix: string): string {
    const { g } = this;
    const linear = (name: string) =>
      this.weights.linear(x, `${prefix}.${name}`, this.param(`${prefix}.${name}.weight`));
    const gate = linear('gate_proj');
    const silu = g.node(
      'Mul',
      [gate, g.node('Sigmoid', [gate], {}, { name: `${prefix}.silu` })],
      {},
      { name: `${prefix}.silu` },
    );
    const hidden = g.node('Mul', [silu, linear('up_proj')], {}, { name: `${prefix}.swiglu` });
    return this.weights.linear(hidden, `${prefix}.down_proj`, this.param(`${prefix}.down_proj.weight`));
  }
}
