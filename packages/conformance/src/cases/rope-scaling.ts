/**
 * RoPE scaling, every rope_type transformers' DiffLlama accepts, against the float64 reference's own
 * formulas (reference/rope-scaling.ts) and its own resolved parameters (defaults such as YaRN's
 * attention factor are written out here, not taken from core):
 *
 *   - rotary/rope scaling …   core's tables (rotaryTablesOnHost, float32 whatever the run's dtype) at
 *                 the start, around the original length and at the last positions of a 131072 context,
 *                 applied by the backend's rotary kernel;
 *   - model/diffllama rope …   a small Hugging Face DiffLlama whose config.json asks for the scaling,
 *                 loaded as core loads a folder (config → dims → graph, rows permuted), logits against
 *                 the float64 DiffLlama reference rotated with the same formulas;
 *   - decode/diffllama rope …  dynamic NTK and longrope through a KV cache across their original
 *                 length: each forward's keys keep the rotation of the forward that made them, and
 *                 dynamic's length state carries over from one sequence to the next (growth, the kept
 *                 base, the reset), as transformers' dynamic_rope_update does.
 */
import type { Backend, HostTensor, Random, RopeScaling, RopeScalingInput } from '@diff-transformer/core';
import {
  DiffTransformer,
  diffLlamaDims,
  diffLlamaModelConfig,
  diffLlamaParameterShapes,
  fromDiffLlamaParameters,
  ops,
  resolveConfig,
  rotaryTablesOnHost,
  tensor,
  tidy,
} from '@diff-transformer/core';
import * as reference from '@diff-transformer/reference';
import { type DiffLlamaReferenceConfig, type RefTensor, refZeros } from '@diff-transformer/reference';
import type { ConformanceCase } from '../types.js';
import type { Check } from './harness.js';
import { defineCase } from './harness.js';
import { integers, normal } from './inputs.js';

/** A scaling as core is given it, and as the reference computes it (defaults written out). */
interface ScalingSpec {
  readonly label: string;
  readonly input: RopeScalingInput;
  readonly expected: RopeScaling;
  /** Total length of the forward the far window belongs to (what dynamic and longrope see). */
  readonly length: number;
}

const CONTEXT = 131072;
const L0 = 8192;
const longFactor = Array.from({ length: 32 }, (_, j) => 1 + j);
const shortFactor = Array.from({ length: 32 }, (_, j) => 1 + j / 62);
const yarnFactor = 16;

const FAR: readonly ScalingSpec[] = [
  { label: 'default', input: { type: 'default' }, expected: { type: 'default' }, length: CONTEXT },
  {
    label: 'linear factor 4',
    input: { type: 'linear', factor: 4 },
    expected: { type: 'linear', factor: 4 },
    length: CONTEXT,
  },
  {
    label: 'dynamic factor 4 grown to 131072',
    input: { type: 'dynamic', factor: 4, originalMaxPositions: L0 },
    expected: { type: 'dynamic', factor: 4, originalMaxPositions: L0 },
    length: CONTEXT,
  },
  {
    label: 'yarn factor 16',
    input: { type: 'yarn', factor: yarnFactor, originalMaxPositions: L0 },
    expected: {
      type: 'yarn',
      factor: yarnFactor,
      originalMaxPositions: L0,
      attentionFactor: 0.1 * Math.log(yarnFactor) + 1,
      betaFast: 32,
      betaSlow: 1,
      truncate: true,
    },
    length: CONTEXT,
  },
  {
    label: 'yarn mscale, untruncated ramp',
    input: {
      type: 'yarn',
      factor: 40,
      originalMaxPositions: 4096,
      mscale: 0.6,
      mscaleAllDim: 1,
      betaFast: 24,
      betaSlow: 2,
      truncate: false,
    },
    expected: {
      type: 'yarn',
      factor: 40,
      originalMaxPositions: 4096,
      attentionFactor: (0.1 * 0.6 * Math.log(40) + 1) / (0.1 * Math.log(40) + 1),
      betaFast: 24,
      betaSlow: 2,
      truncate: false,
    },
    length: CONTEXT,
  },
  {
    label: 'longrope long factors',
    input: { type: 'longrope', shortFactor, longFactor, originalMaxPositions: L0, factor: 16 },
    expected: {
      type: 'longrope',
      shortFactor,
      longFactor,
      originalMaxPositions: L0,
      attentionFactor: Math.sqrt(1 + Math.log(16) / Math.log(L0)),
    },
    length: CONTEXT,
  },
  {
    label: 'longrope short factors',
    input: { type: 'longrope', shortFactor, longFactor, originalMaxPositions: L0, attentionFactor: 1.2 },
    expected: { type: 'longrope', shortFactor, longFactor, originalMaxPositions: L0, attentionFactor: 1.2 },
    length: L0,
  },
  {
    label: 'llama3 factor 32',
    input: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: L0 },
    expected: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: L0 },
    length: CONTEXT,
  },
];

/** Position windows: the start, around the original length, and the end of a 131072 context. */
function windows(length: number): Array<{ start: number; count: number }> {
  const out = [
    { start: 0, count: 5 },
    { start: L0 - 4, count: 8 },
    { start: length - 7, count: 7 },
  ];
  return out.filter((w) => w.start + w.count <= length);
}

function farCase(spec: ScalingSpec): ConformanceCase {
  const dim = 64;
  const theta = 500000;
  const heads = 2;
  return defineCase(
    `rotary/rope scaling ${spec.label} d${dim} θ${theta} positions to ${spec.length - 1}`,
    'rotary',
    async (ws, random) => {
      const resolved = resolveConfig({
        vocabSize: 2,
        hiddenSize: dim,
        numLayers: 1,
        numHeads: 1,
        headDim: dim,
        rope: { theta, scaling: spec.input },
      }).rope.scaling;
      const checks: Check[] = [];
      for (const { start, count } of windows(spec.length)) {
        const host = rotaryTablesOnHost({ dim, theta, scaling: resolved }, count, { start, length: spec.length });
        const cos = ws.own(tensor(host.cos, [count, dim / 2], { backend: ws.backend }));
        const sin = ws.own(tensor(host.sin, [count, dim / 2], { backend: ws.backend }));
        const x = await ws.floats(normal(random, count * heads * dim), [1, count, heads, dim]);
        const attrs = { layout: 'half', positionOffset: 0 } as const;
        const out = ws.own(tidy(() => ops.rotary(x.tensor, cos, sin, attrs)));
        const positions = Array.from({ length: count }, (_, i) => start + i);
        const rows = reference.scaledRotaryTables(dim, theta, spec.expected, positions, spec.length);
        checks.push({
          label: `positions ${start}…${start + count - 1}`,
          actual: await ws.read(out),
          expected: reference.rotary(x.ref, rows.cos, rows.sin, attrs),
        });
      }
      return checks;
    },
    { float32Only: true },
  );
}

/** A small DiffLlama: config.json fields (HF names) and its random tensors. */
const HF_BASE = {
  model_type: 'diffllama',
  vocab_size: 40,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: false,
  max_position_embeddings: 16,
} as const;

interface DiffLlamaRopeSpec {
  readonly label: string;
  /** How config.json spells it (rope_scaling + rope_theta, or rope_parameters). */
  readonly json: Record<string, unknown>;
  readonly theta: number;
  readonly expected: RopeScaling;
}

const SMALL_SHORT = Array.from({ length: 8 }, (_, j) => 1 + j / 8);
const SMALL_LONG = Array.from({ length: 8 }, (_, j) => 1 + j);

const DIFFLLAMA: readonly DiffLlamaRopeSpec[] = [
  {
    label: 'llama3',
    json: {
      rope_theta: 10000,
      rope_scaling: {
        rope_type: 'llama3',
        factor: 4,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 16,
      },
    },
    theta: 10000,
    expected: { type: 'llama3', factor: 4, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 16 },
  },
  {
    label: 'linear',
    json: { rope_parameters: { rope_type: 'linear', rope_theta: 10000, factor: 4 } },
    theta: 10000,
    expected: { type: 'linear', factor: 4 },
  },
  {
    label: 'yarn',
    json: {
      rope_parameters: { rope_type: 'yarn', rope_theta: 10000, factor: 8, original_max_position_embeddings: 16 },
    },
    theta: 10000,
    expected: {
      type: 'yarn',
      factor: 8,
      originalMaxPositions: 16,
      attentionFactor: 0.1 * Math.log(8) + 1,
      betaFast: 32,
      betaSlow: 1,
      truncate: true,
    },
  },
  {
    label: 'longrope',
    json: {
      rope_theta: 10000,
      rope_scaling: { type: 'longrope', short_factor: SMALL_SHORT, long_factor: SMALL_LONG, factor: 4 },
    },
    theta: 10000,
    expected: {
      type: 'longrope',
      shortFactor: SMALL_SHORT,
      longFactor: SMALL_LONG,
      originalMaxPositions: 16,
      attentionFactor: Math.sqrt(1 + Math.log(4) / Math.log(16)),
    },
  },
  {
    label: 'dynamic',
    json: { rope_theta: 10000, rope_scaling: { type: 'dynamic', factor: 2 } },
    theta: 10000,
    expected: { type: 'dynamic', factor: 2, originalMaxPositions: 16 },
  },
];

function hfParameters(json: Record<string, unknown>, random: Random): Map<string, HostTensor> {
  const dims = diffLlamaDims(json, 'config.json');
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of diffLlamaParameterShapes(dims)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (name.includes('lambda_')) data = normal(random, n, 0.3);
    else if (name.endsWith('norm.weight')) data = Float32Array.from(normal(random, n, 0.1), (v) => 1 + v);
    else data = normal(random, n, 1 / Math.sqrt(shape[shape.length - 1]));
    out.set(name, { shape, data });
  }
  return out;
}

function referenceConfig(theta: number): DiffLlamaReferenceConfig {
  return {
    vocabSize: HF_BASE.vocab_size,
    hiddenSize: HF_BASE.hidden_size,
    numLayers: HF_BASE.num_hidden_layers,
    numAttentionHeads: HF_BASE.num_attention_heads,
    numKeyValueHeads: HF_BASE.num_key_value_heads,
    headDim: HF_BASE.head_dim,
    rmsNormEps: HF_BASE.rms_norm_eps,
    ropeTheta: theta,
    tieWordEmbeddings: HF_BASE.tie_word_embeddings,
  };
}

/** Core's model of a DiffLlama config.json and HF tensors, loaded as a folder is. */
function loadDiffLlama(json: Record<string, unknown>, hf: Map<string, HostTensor>, backend: Backend) {
  const dims = diffLlamaDims(json, 'config.json');
  const config = diffLlamaModelConfig(dims, 'config.json');
  return DiffTransformer.fromParameters(config, fromDiffLlamaParameters(dims, config, hf), { backend });
}

/** The reference's rotary rows of a sequence fed in `steps`, each forward scaled for `lengths[i]`. */
function referenceRows(spec: DiffLlamaRopeSpec, steps: readonly number[], lengths?: readonly number[]) {
  const rows = reference.modelRotaryRows(
    {
      headDim: HF_BASE.head_dim,
      rope: { theta: spec.theta, layout: 'half', precision: 'float64', scaling: spec.expected },
    },
    steps,
    lengths,
  );
  return { cos: rows.cos.data, sin: rows.sin.data };
}

function diffLlamaCase(spec: DiffLlamaRopeSpec, tokens: number): ConformanceCase {
  return defineCase(
    `model/diffllama rope ${spec.label} (${Object.keys(spec.json).join(' + ')}) B1 T${tokens}`,
    'model',
    async (ws, random) => {
      const json = { ...HF_BASE, ...spec.json };
      const hf = hfParameters(json, random);
      const ids = [integers(random, tokens, HF_BASE.vocab_size)];
      const model = loadDiffLlama(json, hf, ws.backend);
      try {
        const logits = ws.own(model.forward(ids));
        return [
          {
            label: 'logits',
            actual: await ws.read(logits),
            expected: reference.diffLlamaLogits(referenceConfig(spec.theta), hf, ids, referenceRows(spec, [tokens])),
          },
        ];
      } finally {
        model.dispose();
      }
    },
    { float32Only: true },
  );
}

/** Reference logits [1, T, V] restricted to positions [from, from + count). */
function positions(logits: RefTensor, from: number, count: number): RefTensor {
  const vocab = logits.shape[2];
  const out = refZeros([1, count, vocab]);
  out.data.set(logits.data.subarray(from * vocab, (from + count) * vocab));
  return out;
}

/**
 * Sequences fed one after another through fresh caches of one model, each as its forwards' token
 * counts. dynamic (L₀ 16): the first grows the base step by step past 16; the second (18 tokens,
 * under the 20 reached) keeps the grown base; the third (6 < 16) resets it.
 */
function diffLlamaDecodeCase(spec: DiffLlamaRopeSpec, sequences: ReadonlyArray<readonly number[]>): ConformanceCase {
  const name = sequences.map((steps) => steps.join('+')).join(', then ');
  return defineCase(
    `decode/diffllama rope ${spec.label} sequences ${name}`,
    'decode',
    async (ws, random) => {
      const json = { ...HF_BASE, ...spec.json };
      const hf = hfParameters(json, random);
      const model = loadDiffLlama(json, hf, ws.backend);
      // What each forward's scaling sees, over the model's whole history.
      const ends = sequences.map((steps) => steps.map((_, i) => steps.slice(0, i + 1).reduce((a, b) => a + b)));
      const scaled =
        spec.expected.type === 'dynamic'
          ? reference.dynamicForwardLengths(ends.flat(), spec.expected.originalMaxPositions)
          : ends.flat();
      const checks: Check[] = [];
      let forward = 0;
      try {
        for (const [s, steps] of sequences.entries()) {
          const total = steps.reduce((a, b) => a + b);
          const ids = [integers(random, total, HF_BASE.vocab_size)];
          const lengths = scaled.slice(forward, forward + steps.length);
          forward += steps.length;
          const expected = reference.diffLlamaLogits(
            referenceConfig(spec.theta),
            hf,
            ids,
            referenceRows(spec, steps, lengths),
          );
          const cache = model.createCache(1, total + 2);
          try {
            let at = 0;
            for (const [step, count] of steps.entries()) {
              const logits = ws.own(model.forward([ids[0].slice(at, at + count)], { cache }));
              checks.push({
                label: `sequence ${s} step ${step}: positions [${at}, ${at + count}), scaled for ${lengths[step]}`,
                actual: await ws.read(logits),
                expected: positions(expected, at, count),
              });
              logits.dispose();
              at += count;
            }
          } finally {
            cache.dispose();
          }
        }
        return checks;
      } finally {
        model.dispose();
      }
    },
    { float32Only: true },
  );
}

export function ropeScalingCases(): ConformanceCase[] {
  const dynamic = DIFFLLAMA.find((s) => s.label === 'dynamic')!;
  const longrope = DIFFLLAMA.find((s) => s.label === 'longrope')!;
  return [
    ...FAR.map(farCase),
    ...DIFFLLAMA.map((spec) => diffLlamaCase(spec, 24)),
    diffLlamaDecodeCase(dynamic, [
      [12, 1, 1, 1, 1, 1, 1, 1, 1],
      [18, 1],
      [6, 1],
    ]),
    diffLlamaDecodeCase(longrope, [
      [12, 1, 1, 1, 1, 1, 1],
      [20, 1],
    ]),
  ];
}
