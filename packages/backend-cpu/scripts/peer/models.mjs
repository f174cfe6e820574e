/**
 * The peer benchmark's ONNX graphs, built in code with the ONNX exporter's graph writer
 * (@diff-transformer/onnx), each the same computation as a `difftx bench` op:
 *
 *   matmul     A [M, K] (input) · B [K, N] (a constant, which onnxruntime pre-packs)
 *   attention  causal softmax attention, 2H heads of width d: the opset-23 Attention operator
 *   diff-attention  differential attention (Ye et al. 2025), H heads: both maps of each head through
 *              one Attention node (2H heads, V repeated per map), A₁ − λ·A₂, the per-head RMSNorm
 *              × (1 − λinit)
 *   forward / decode  the bench model of `difftx bench` (vocabulary 8192, d_model 512, 4 layers,
 *              4 differential heads of width 64, SwiGLU 1408, untied LM head, RMSNorm, interleaved
 *              rotary): embedding, per layer RMSNorm → Q, K, V → rotary → differential attention →
 *              output projection → residual → RMSNorm → SwiGLU → residual, final RMSNorm, LM head.
 *              decode: one token against a KV cache of T tokens (past keys and values as inputs).
 *
 * Weights are random: speed does not depend on their values.
 */
import { encodeModel, OnnxGraph } from '@diff-transformer/onnx';

export const BENCH_MODEL = { vocab: 8192, hidden: 512, layers: 4, heads: 4, headDim: 64, intermediate: 1408 };

function random(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 2 ** 32 - 0.5) * 0.1;
  };
}

/** The values of a weight the graphs hold (seeded), e.g. to compute the same thing elsewhere. */
export function weightValues(shape, seed) {
  const next = random(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: size }, next);
}

function weight(graph, name, shape, seed) {
  return float32(graph, name, shape, weightValues(shape, seed));
}

function float32(graph, name, shape, values) {
  return graph.initializer(name, 'float32', shape, new Uint8Array(Float32Array.from(values).buffer));
}

/**
 * The ModelProto as one buffer: IR version 10, opset 23 of ai.onnx (its fused Attention and
 * RotaryEmbedding, ONNX Runtime's fastest path) and 1 of com.microsoft.
 */
function encode(graph) {
  const { model } = encodeModel(graph, {
    irVersion: 10,
    opsets: [
      { domain: '', version: 23 },
      { domain: 'com.microsoft', version: 1 },
    ],
    producerName: 'diff-transformer peer benchmark',
    producerVersion: '0',
  });
  return Buffer.concat(model.map((chunk) => (chunk instanceof Uint8Array ? chunk : chunk.produce())));
}

export function matmulModel(m, n, k) {
  const g = new OnnxGraph('peer');
  const a = g.input('a', 'float32', [m, k]);
  const c = g.node('MatMul', [a, weight(g, 'b', [k, n], 1)]);
  g.output(c, 'float32', [m, n]);
  return encode(g);
}

export function attentionModel(t, heads, d) {
  const g = new OnnxGraph('peer');
  const q = g.input('q', 'float32', [1, t, heads * d]);
  const k = g.input('k', 'float32', [1, t, heads * d]);
  const v = g.input('v', 'float32', [1, t, heads * d]);
  const y = g.node('Attention', [q, k, v], { is_causal: 1, q_num_heads: heads, kv_num_heads: heads });
  g.output(y, 'float32', [1, t, heads * d]);
  return encode(g);
}

/**
 * Differential attention of q [1, T, 2H·d], k [1, T, 2H·d], v [1, T, H·2d] (roped already) into
 * [1, T, H·2d]; with `past`, the keys and values of earlier positions come in as [1, 2H, P, d] and
 * [1, 2H, P, 2d] and the new ones go out the same way (no causal mask: one new token sees them all).
 */
function differentialAttention(g, q, k, v, { t, heads, d, layer, past }) {
  // V once per map: [1, T, H, 2d] → [1, T, H, 2, 2d] → [1, T, 2H·2d].
  const v5 = g.node('Reshape', [v, g.int64([1, t, heads, 1, 2 * d])]);
  const vv = g.node('Expand', [v5, g.int64([1, t, heads, 2, 2 * d])]);
  const vmaps = g.node('Reshape', [vv, g.int64([1, t, 2 * heads * 2 * d])]);
  const attributes = { is_causal: past ? 0 : 1, q_num_heads: 2 * heads, kv_num_heads: 2 * heads };
  const inputs = past ? [q, k, vmaps, '', past.key, past.value] : [q, k, vmaps];
  const outputs = g.node('Attention', inputs, attributes, { outputs: past ? 3 : 1 });
  const y = past ? outputs[0] : outputs;
  // [1, T, 2H·2d] → [1, T, H, 2, 2d]: map 0 and map 1 of each head.
  const maps = g.node('Reshape', [y, g.int64([1, t, heads, 2, 2 * d])]);
  const [a1, a2] = g.node('Split', [maps, g.int64([1, 1])], { axis: 3 }, { outputs: 2 });
  const lambda = weight(g, `layer${layer}.lambda`, [heads, 1, 1], 100 + layer);
  const diff = g.node('Sub', [a1, g.node('Mul', [a2, lambda])]);
  const norm = g.node('SimplifiedLayerNormalization', [diff, weight(g, `layer${layer}.subln`, [2 * d], 200 + layer)], {
    axis: -1,
    epsilon: { float: 1e-5 },
  });
  const out = g.node('Reshape', [norm, g.int64([1, t, heads * 2 * d])]);
  return past ? { out, key: outputs[1], value: outputs[2] } : { out };
}

export function diffAttentionModel(t, heads, d) {
  const g = new OnnxGraph('peer');
  const q = g.input('q', 'float32', [1, t, 2 * heads * d]);
  const k = g.input('k', 'float32', [1, t, 2 * heads * d]);
  const v = g.input('v', 'float32', [1, t, heads * 2 * d]);
  const { out } = differentialAttention(g, q, k, v, { t, heads, d, layer: 0, past: null });
  g.output(out, 'float32', [1, t, heads * 2 * d]);
  return encode(g);
}

/**
 * The bench model over `t` new tokens. With `past` > 0: positions past…past+t−1 against a cache of
 * `past` earlier tokens (inputs past_key_L, past_value_L).
 */
export function benchModel(t, past = 0) {
  const { vocab, hidden, layers, heads, headDim: d, intermediate } = BENCH_MODEL;
  const g = new OnnxGraph('peer');
  const ids = g.input('ids', 'int64', [1, t]);
  const positions = g.input('positions', 'int64', [1, t]);
  const maxPositions = 4096;
  // Rotary tables for every position, interleaved pairs (RoPE, base 10000).
  const cos = [];
  const sin = [];
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < d / 2; i++) {
      const angle = p / 10000 ** ((2 * i) / d);
      cos.push(Math.cos(angle));
      sin.push(Math.sin(angle));
    }
  }
  const cosCache = float32(g, 'cos', [maxPositions, d / 2], cos);
  const sinCache = float32(g, 'sin', [maxPositions, d / 2], sin);
  let x = g.node('Gather', [weight(g, 'embedding', [vocab, hidden], 1), ids], { axis: 0 });
  const norm = (input, name, seed) =>
    g.node('SimplifiedLayerNormalization', [input, weight(g, name, [hidden], seed)], {
      axis: -1,
      epsilon: { float: 1e-5 },
    });
  const linear = (input, name, inFeatures, outFeatures, seed) =>
    g.node('MatMul', [input, weight(g, name, [inFeatures, outFeatures], seed)]);
  const rope = (input) =>
    g.node('RotaryEmbedding', [input, cosCache, sinCache, positions], { interleaved: 1, num_heads: 2 * heads });
  for (let layer = 0; layer < layers; layer++) {
    const seed = 1000 * (layer + 1);
    const h = norm(x, `layer${layer}.attention_norm`, seed);
    const q = rope(linear(h, `layer${layer}.q`, hidden, 2 * heads * d, seed + 1));
    const k = rope(linear(h, `layer${layer}.k`, hidden, 2 * heads * d, seed + 2));
    const v = linear(h, `layer${layer}.v`, hidden, heads * 2 * d, seed + 3);
    const cache = past
      ? {
          key: g.input(`past_key_${layer}`, 'float32', [1, 2 * heads, past, d]),
          value: g.input(`past_value_${layer}`, 'float32', [1, 2 * heads, past, 2 * d]),
        }
      : null;
    const attention = differentialAttention(g, q, k, v, { t, heads, d, layer, past: cache });
    if (cache) {
      g.output(attention.key, 'float32', [1, 2 * heads, past + t, d]);
      g.output(attention.value, 'float32', [1, 2 * heads, past + t, 2 * d]);
    }
    x = g.node('Add', [x, linear(attention.out, `layer${layer}.o`, heads * 2 * d, hidden, seed + 4)]);
    const m = norm(x, `layer${layer}.mlp_norm`, seed + 5);
    const gate = linear(m, `layer${layer}.gate`, hidden, intermediate, seed + 6);
    const up = linear(m, `layer${layer}.up`, hidden, intermediate, seed + 7);
    const swiglu = g.node('Mul', [g.node('Mul', [gate, g.node('Sigmoid', [gate])]), up]);
    x = g.node('Add', [x, linear(swiglu, `layer${layer}.down`, intermediate, hidden, seed + 8)]);
  }
  const logits = linear(norm(x, 'final_norm', 7), 'lm_head', hidden, vocab, 8);
  g.output(logits, 'float32', [1, t, vocab]);
  return encode(g);
}
