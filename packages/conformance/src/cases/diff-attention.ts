/**
 * diffAttention: DIFF V1 (per-map keys, λ per head, fused subln norm with and without weight) and
 * DIFF V2 (shared keys, λ per token), across GQA groups of 1, 2 and 4, head widths 16 to 128, T = 1 to
 * 129, decode steps against a larger cache, λ below 0 and above 1, logits of ±1e4 and a non-default
 * scale. λ is given directly: how a model derives it is the model cases' business. The large cases
 * (opt-in) decode against caches of 777 to 1600 keys (split keys on GPUs) and prefill 300 tokens (many
 * key tiles of a flash kernel).
 */
import type { AttentionMaskAttrs, Random } from '@diff-transformer/core';
import { lambdaInit, ops, tidy } from '@diff-transformer/core';
import * as reference from '@diff-transformer/reference';
import type { ConformanceCase } from '../types.js';
import type { AttentionSpec } from './attention.js';
import { LARGE_SCORE_SCALE, keys as keyValues, queries, withStaleRows } from './attention-inputs.js';
import type { Input, Workspace } from './harness.js';
import { defineCase } from './harness.js';
import { normal, uniform } from './inputs.js';

export interface DiffAttentionSpec extends AttentionSpec {
  /** 'per-map': k [B, S, 2Hkv, dk] (V1); 'shared': k [B, S, Hkv, dk] (V2). */
  readonly keyMode: 'per-map' | 'shared';
  /** 'per-head': λ [H] (V1); 'per-token': λ [B, T, H] (V2). */
  readonly lambdaMode: 'per-head' | 'per-token';
  /** λ values drawn uniformly from this range; default [0.1, 0.9] per head, σ(N(0, 1)) per token. */
  readonly lambdaRange?: readonly [number, number];
  /** The fused per-head RMSNorm; absent means none. */
  readonly norm?: { readonly eps: number; readonly outputScale: number; readonly weight: boolean };
}

/** The fused subln of a DIFF V1 layer at some depth, as the model passes it. */
export const subln = (depth: number, weight = true) => ({ eps: 1e-5, outputScale: 1 - lambdaInit(depth), weight });

export const DIFF_ATTENTION_SPECS: readonly DiffAttentionSpec[] = [
  {
    label: 'v1 mha H2 d16 T7 subln',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    norm: subln(0),
    batch: 1,
    tokens: 7,
    keys: 7,
    heads: 2,
    kvHeads: 2,
    dk: 16,
    dv: 32,
  },
  {
    label: 'v1 gqa2 H4 Hkv2 d32 T33 B2 subln',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    norm: subln(3),
    batch: 2,
    tokens: 33,
    keys: 33,
    heads: 4,
    kvHeads: 2,
    dk: 32,
    dv: 64,
  },
  {
    label: 'v1 gqa4 H4 Hkv1 d64 T7 B2 subln',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    norm: subln(1),
    batch: 2,
    tokens: 7,
    keys: 7,
    heads: 4,
    kvHeads: 1,
    dk: 64,
    dv: 128,
  },
  {
    label: 'v1 H1 d128 T1 subln',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    norm: subln(5),
    batch: 1,
    tokens: 1,
    keys: 1,
    heads: 1,
    kvHeads: 1,
    dk: 128,
    dv: 256,
  },
  {
    label: 'v1 H2 d16 T129 subln',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    norm: subln(2),
    batch: 1,
    tokens: 129,
    keys: 129,
    heads: 2,
    kvHeads: 2,
    dk: 16,
    dv: 32,
  },
  {
    label: 'v1 without norm, gqa2 d16 T33',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    batch: 1,
    tokens: 33,
    keys: 33,
    heads: 2,
    kvHeads: 1,
    dk: 16,
    dv: 32,
  },
  {
    label: 'v1 norm without weight (subln not affine), outputScale 1 − λinit(4)',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    norm: subln(4, false),
    batch: 1,
    tokens: 7,
    keys: 7,
    heads: 2,
    kvHeads: 2,
    dk: 16,
    dv: 32,
  },
  {
    label: 'v1 non-causal T7 S33 subln',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    norm: subln(1),
    causal: false,
    batch: 1,
    tokens: 7,
    keys: 33,
    heads: 2,
    kvHeads: 1,
    dk: 16,
    dv: 32,
  },
  {
    label: 'v1 non-causal keyLength 20 of cache 33, gqa2 d16 T7 subln',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    norm: subln(1),
    causal: false,
    keyLength: 20,
    batch: 1,
    tokens: 7,
    keys: 33,
    heads: 4,
    kvHeads: 2,
    dk: 16,
    dv: 32,
  },
  {
    label: 'v1 λ in [−1, 2] (negative and above 1) without norm',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    lambdaRange: [-1, 2],
    batch: 1,
    tokens: 7,
    keys: 7,
    heads: 4,
    kvHeads: 2,
    dk: 16,
    dv: 32,
  },
  {
    label: 'v1 λ in [1.2, 2] with subln',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    lambdaRange: [1.2, 2],
    norm: subln(0),
    batch: 1,
    tokens: 7,
    keys: 7,
    heads: 2,
    kvHeads: 2,
    dk: 16,
    dv: 32,
  },
  {
    label: 'v1 decode T1 keyOffset 20 keyLength 21 of cache 33, gqa2 d32 subln',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    norm: subln(2),
    batch: 2,
    tokens: 1,
    keys: 33,
    heads: 4,
    kvHeads: 2,
    dk: 32,
    dv: 64,
    keyOffset: 20,
    keyLength: 21,
  },
  {
    label: 'v1 chunk T4 keyOffset 9 keyLength 13 of cache 20, gqa4 d16 subln',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    norm: subln(1),
    batch: 1,
    tokens: 4,
    keys: 20,
    heads: 4,
    kvHeads: 1,
    dk: 16,
    dv: 32,
    keyOffset: 9,
    keyLength: 13,
  },
  {
    label: 'v1 scores ±1e4 need the max subtracted, d16 T33 subln',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    norm: subln(1),
    batch: 1,
    tokens: 33,
    keys: 33,
    heads: 2,
    kvHeads: 1,
    dk: 16,
    dv: 32,
    scale: LARGE_SCORE_SCALE,
    largeScores: 'one-hot',
  },
  {
    label: 'v1 explicit scale 0.3 and norm eps 0.5',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    norm: { eps: 0.5, outputScale: 0.7, weight: true },
    scale: 0.3,
    batch: 1,
    tokens: 7,
    keys: 7,
    heads: 2,
    kvHeads: 2,
    dk: 32,
    dv: 64,
  },
  {
    label: 'v2 shared keys, per-token λ, gqa2 H4 Hkv2 d32 T7 B2',
    keyMode: 'shared',
    lambdaMode: 'per-token',
    batch: 2,
    tokens: 7,
    keys: 7,
    heads: 4,
    kvHeads: 2,
    dk: 32,
    dv: 32,
  },
  {
    label: 'v2 shared keys, per-token λ, gqa4 H4 Hkv1 d64 T33',
    keyMode: 'shared',
    lambdaMode: 'per-token',
    batch: 1,
    tokens: 33,
    keys: 33,
    heads: 4,
    kvHeads: 1,
    dk: 64,
    dv: 64,
  },
  {
    label: 'v2 mha H2 d128 T1',
    keyMode: 'shared',
    lambdaMode: 'per-token',
    batch: 1,
    tokens: 1,
    keys: 1,
    heads: 2,
    kvHeads: 2,
    dk: 128,
    dv: 128,
  },
  {
    label: 'v2 decode T1 keyOffset 16 keyLength 17 of cache 24, gqa2 d16',
    keyMode: 'shared',
    lambdaMode: 'per-token',
    batch: 2,
    tokens: 1,
    keys: 24,
    heads: 2,
    kvHeads: 1,
    dk: 16,
    dv: 16,
    keyOffset: 16,
    keyLength: 17,
  },
  {
    label: 'v2 per-token λ in [−1, 2]',
    keyMode: 'shared',
    lambdaMode: 'per-token',
    lambdaRange: [-1, 2],
    batch: 1,
    tokens: 7,
    keys: 7,
    heads: 4,
    kvHeads: 2,
    dk: 16,
    dv: 16,
  },
  {
    label: 'v2 scores ±1e4 need the max subtracted, d16 T33',
    keyMode: 'shared',
    lambdaMode: 'per-token',
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
  {
    label: 'shared keys with per-head λ and subln',
    keyMode: 'shared',
    lambdaMode: 'per-head',
    norm: subln(2),
    batch: 1,
    tokens: 7,
    keys: 7,
    heads: 4,
    kvHeads: 2,
    dk: 16,
    dv: 32,
  },
];

/** Opt-in (ConformanceCase.large): caches long enough that GPUs split the keys, and a long prefill. */
const LARGE_DIFF_ATTENTION_SPECS: readonly DiffAttentionSpec[] = [
  {
    label: 'v1 decode T1 keyOffset 1500 keyLength 1501 of cache 1600, gqa2 d32 subln (split keys)',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    norm: subln(3),
    batch: 2,
    tokens: 1,
    keys: 1600,
    heads: 4,
    kvHeads: 2,
    dk: 32,
    dv: 64,
    keyOffset: 1500,
    keyLength: 1501,
  },
  {
    label: 'v1 chunk T5 keyOffset 1000 keyLength 1005 of cache 1100, gqa4 d16 (split keys)',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    batch: 1,
    tokens: 5,
    keys: 1100,
    heads: 4,
    kvHeads: 1,
    dk: 16,
    dv: 32,
    keyOffset: 1000,
    keyLength: 1005,
  },
  {
    label: 'v2 decode T1 keyOffset 776 keyLength 777, per-token λ, d16 (split keys)',
    keyMode: 'shared',
    lambdaMode: 'per-token',
    batch: 1,
    tokens: 1,
    keys: 777,
    heads: 2,
    kvHeads: 1,
    dk: 16,
    dv: 16,
    keyOffset: 776,
    keyLength: 777,
  },
  {
    label: 'v1 non-causal T3 over 1200 keys, norm without weight (split keys)',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    norm: subln(2, false),
    causal: false,
    batch: 1,
    tokens: 3,
    keys: 1200,
    heads: 2,
    kvHeads: 2,
    dk: 16,
    dv: 32,
  },
  {
    label: 'v1 prefill T300 B2 gqa2 d64 subln (many key tiles)',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    norm: subln(1),
    batch: 2,
    tokens: 300,
    keys: 300,
    heads: 4,
    kvHeads: 2,
    dk: 64,
    dv: 128,
  },
];

/** The inputs of a case: uploaded in the case's dtype, with the reference's view of each. */
export interface DiffAttentionInputs {
  readonly q: Input;
  readonly k: Input;
  readonly v: Input;
  readonly lambda: Input;
  readonly weight: Input | null;
  readonly mask: AttentionMaskAttrs;
  readonly norm: { readonly eps: number; readonly outputScale: number } | null;
}

/** Draws and uploads a spec's inputs: stale cache rows past keyLength, λ in its range, weights around 1. */
export async function diffAttentionInputs(
  ws: Workspace,
  random: Random,
  spec: DiffAttentionSpec,
): Promise<DiffAttentionInputs> {
  const keyLength = spec.keyLength ?? spec.keys;
  const mask = {
    causal: spec.causal ?? true,
    keyOffset: spec.keyOffset ?? 0,
    keyLength,
    scale: spec.scale ?? 1 / Math.sqrt(spec.dk),
  };
  const keyHeads = spec.keyMode === 'per-map' ? 2 * spec.kvHeads : spec.kvHeads;
  const qShape = [spec.batch, spec.tokens, 2 * spec.heads, spec.dk];
  const kShape = [spec.batch, spec.keys, keyHeads, spec.dk];
  const vShape = [spec.batch, spec.keys, spec.kvHeads, spec.dv];
  const lambdaShape = spec.lambdaMode === 'per-head' ? [spec.heads] : [spec.batch, spec.tokens, spec.heads];
  const size = (shape: number[]) => shape.reduce((a, b) => a * b);
  const q = await ws.floats(queries(random, size(qShape), spec.largeScores), qShape);
  const k = await ws.floats(withStaleRows(keyValues(random, kShape, spec.largeScores), kShape, keyLength), kShape);
  const v = await ws.floats(withStaleRows(normal(random, size(vShape)), vShape, keyLength), vShape);
  const lambdaValues = spec.lambdaRange
    ? uniform(random, size(lambdaShape), spec.lambdaRange[0], spec.lambdaRange[1])
    : spec.lambdaMode === 'per-head'
      ? uniform(random, size(lambdaShape), 0.1, 0.9)
      : normal(random, size(lambdaShape)).map((x) => 1 / (1 + Math.exp(-x)));
  const lambda = await ws.floats(lambdaValues, lambdaShape);
  const weight = spec.norm?.weight
    ? await ws.floats(
        normal(random, spec.dv, 0.3).map((w) => 1 + w),
        [spec.dv],
      )
    : null;
  const norm = spec.norm ? { eps: spec.norm.eps, outputScale: spec.norm.outputScale } : null;
  return { q, k, v, lambda, weight, mask, norm };
}

/** The options of ops.diffAttention for the inputs. */
export function diffAttentionOptions(inputs: DiffAttentionInputs) {
  const { mask, norm, weight } = inputs;
  return { ...mask, norm: norm && { ...norm, weight: weight?.tensor ?? null } };
}

function diffAttentionCase(spec: DiffAttentionSpec, large = false): ConformanceCase {
  return defineCase(
    `diffAttention/${spec.label}`,
    'diffAttention',
    async (ws, random) => {
      const inputs = await diffAttentionInputs(ws, random, spec);
      const { q, k, v, lambda, weight, mask, norm } = inputs;
      const out = ws.own(
        tidy(() => ops.diffAttention(q.tensor, k.tensor, v.tensor, lambda.tensor, diffAttentionOptions(inputs))),
      );
      const expected = reference.diffAttention(q.ref, k.ref, v.ref, lambda.ref, weight?.ref ?? null, {
        ...mask,
        norm,
      });
      return [{ label: 'output', actual: await ws.read(out), expected }];
    },
    { large },
  );
}

export function diffAttentionCases(): ConformanceCase[] {
  return [
    ...DIFF_ATTENTION_SPECS.map((spec) => diffAttentionCase(spec)),
    ...LARGE_DIFF_ATTENTION_SPECS.map((spec) => diffAttentionCase(spec, true)),
  ];
}
