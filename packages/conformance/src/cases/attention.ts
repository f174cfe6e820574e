/**
 * attention (the baseline): multi-head and GQA groups of 2 and 4, head widths 16 to 128, T = 1 and 129,
 * non-causal, decode steps against a larger cache, logits of ±1e4, dv ≠ dk and an explicit scale. The
 * large case (opt-in) decodes against thousands of keys, where GPU kernels split the keys across
 * workgroups and combine the partial softmaxes.
 */
import type { AttentionMaskAttrs, Random } from '@diff-transformer/core';
import type { LargeScores } from './attention-inputs.js';
import { ops, tidy } from '@diff-transformer/core';
import * as reference from '@diff-transformer/reference';
import type { ConformanceCase } from '../types.js';
import { LARGE_SCORE_SCALE, keys as keyValues, queries, withStaleRows } from './attention-inputs.js';
import type { Input, Workspace } from './harness.js';
import { defineCase } from './harness.js';
import { normal } from './inputs.js';

export interface AttentionSpec {
  readonly label: string;
  readonly batch: number;
  readonly tokens: number;
  /** Rows S of k and v (a KV cache may hold more than keyLength). */
  readonly keys: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly dk: number;
  readonly dv: number;
  readonly causal?: boolean;
  readonly keyOffset?: number;
  readonly keyLength?: number;
  /** Default 1/√dk (the op's default). */
  readonly scale?: number;
  /**
   * Scores of ±1e4 on an exact grid (attention-inputs.ts): 'one-hot', rows close to one-hot (the forward),
   * or 'tied', each row's top score shared by a pair of keys (the backward).
   */
  readonly largeScores?: LargeScores;
}

export const ATTENTION_SPECS: readonly AttentionSpec[] = [
  { label: 'mha H4 d16 T7', batch: 1, tokens: 7, keys: 7, heads: 4, kvHeads: 4, dk: 16, dv: 16 },
  { label: 'gqa2 H4 Hkv2 d32 T33 B2', batch: 2, tokens: 33, keys: 33, heads: 4, kvHeads: 2, dk: 32, dv: 32 },
  { label: 'gqa4 H4 Hkv1 d64 T129', batch: 1, tokens: 129, keys: 129, heads: 4, kvHeads: 1, dk: 64, dv: 64 },
  { label: 'mha H2 d128 T1', batch: 2, tokens: 1, keys: 1, heads: 2, kvHeads: 2, dk: 128, dv: 128 },
  {
    label: 'non-causal H2 Hkv1 d16 T7 S33',
    batch: 1,
    tokens: 7,
    keys: 33,
    heads: 2,
    kvHeads: 1,
    dk: 16,
    dv: 16,
    causal: false,
  },
  // Without the causal limit, only keyLength keeps the stale rows of the cache out.
  {
    label: 'non-causal keyLength 20 of cache 33, gqa2 d16 T7',
    batch: 1,
    tokens: 7,
    keys: 33,
    heads: 4,
    kvHeads: 2,
    dk: 16,
    dv: 16,
    causal: false,
    keyLength: 20,
  },
  {
    label: 'decode T1 keyOffset 32 keyLength 33 of cache 48, gqa2 d32',
    batch: 2,
    tokens: 1,
    keys: 48,
    heads: 4,
    kvHeads: 2,
    dk: 32,
    dv: 32,
    keyOffset: 32,
    keyLength: 33,
  },
  {
    label: 'chunk T5 keyOffset 10 keyLength 15 of cache 20, gqa4 d16',
    batch: 1,
    tokens: 5,
    keys: 20,
    heads: 4,
    kvHeads: 1,
    dk: 16,
    dv: 16,
    keyOffset: 10,
    keyLength: 15,
  },
  {
    label: 'scores ±1e4 need the max subtracted, gqa2 d16 T33',
    batch: 1,
    tokens: 33,
    keys: 33,
    heads: 4,
    kvHeads: 2,
    dk: 16,
    dv: 16,
    scale: LARGE_SCORE_SCALE,
    largeScores: 'one-hot',
  },
  { label: 'dv 32 ≠ dk 16, gqa2 T7', batch: 1, tokens: 7, keys: 7, heads: 2, kvHeads: 1, dk: 16, dv: 32 },
  {
    label: 'explicit scale 0.3, mha d32 T7',
    batch: 1,
    tokens: 7,
    keys: 7,
    heads: 2,
    kvHeads: 2,
    dk: 32,
    dv: 32,
    scale: 0.3,
  },
];

/** Opt-in (ConformanceCase.large): decoding against a cache long enough that GPUs split the keys. */
const LARGE_ATTENTION_SPECS: readonly AttentionSpec[] = [
  {
    label: 'decode T1 keyOffset 2500 keyLength 2501 of cache 3000, gqa2 d32 (split keys)',
    batch: 1,
    tokens: 1,
    keys: 3000,
    heads: 4,
    kvHeads: 2,
    dk: 32,
    dv: 32,
    keyOffset: 2500,
    keyLength: 2501,
  },
];

/** The inputs of a case, uploaded, with the keys past keyLength a stale cache. */
export async function attentionInputs(
  ws: Workspace,
  random: Random,
  spec: AttentionSpec,
): Promise<{ q: Input; k: Input; v: Input; mask: AttentionMaskAttrs }> {
  const keyLength = spec.keyLength ?? spec.keys;
  const mask = {
    causal: spec.causal ?? true,
    keyOffset: spec.keyOffset ?? 0,
    keyLength,
    scale: spec.scale ?? 1 / Math.sqrt(spec.dk),
  };
  const qShape = [spec.batch, spec.tokens, spec.heads, spec.dk];
  const kShape = [spec.batch, spec.keys, spec.kvHeads, spec.dk];
  const vShape = [spec.batch, spec.keys, spec.kvHeads, spec.dv];
  const size = (shape: number[]) => shape.reduce((a, b) => a * b);
  const q = await ws.floats(queries(random, size(qShape), spec.largeScores), qShape);
  const k = await ws.floats(withStaleRows(keyValues(random, kShape, spec.largeScores), kShape, keyLength), kShape);
  const v = await ws.floats(withStaleRows(normal(random, size(vShape)), vShape, keyLength), vShape);
  return { q, k, v, mask };
}

function attentionCase(spec: AttentionSpec, large = false): ConformanceCase {
  return defineCase(
    `attention/${spec.label}`,
    'attention',
    async (ws, random) => {
      const { q, k, v, mask } = await attentionInputs(ws, random, spec);
      const out = ws.own(tidy(() => ops.attention(q.tensor, k.tensor, v.tensor, mask)));
      return [
        { label: 'output', actual: await ws.read(out), expected: reference.attention(q.ref, k.ref, v.ref, mask) },
      ];
    },
    { large },
  );
}

export function attentionCases(): ConformanceCase[] {
  return [
    ...ATTENTION_SPECS.map((spec) => attentionCase(spec)),
    ...LARGE_ATTENTION_SPECS.map((spec) => attentionCase(spec, true)),
  ];
}
