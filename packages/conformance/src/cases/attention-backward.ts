/**
 * What training asks of both attention kernels, on the forward cases' shapes (MHA, GQA 2 and 4,
 * causal and not, keyOffset/keyLength against a cache with stale rows, head widths 16 to 128, scores
 * of ±1e4, λ below 0 and above 1, subln with and without weight, DIFF V1 and V2):
 *   *WithStatistics   the output and what the backward needs (each map's log-sum-exp and output)
 *   *Backward         every gradient, from the backend's own statistics, for a random output gradient
 * The backward runs on the forward's shapes but two, whose gradients float32 cannot represent: scores of ±1e4
 * in rows close to one-hot, and one key under the fused norm. Cases of their own replace them (below).
 */
import { ops, tidy } from '@diff-transformer/core';
import * as reference from '@diff-transformer/reference';
import type { ConformanceCase } from '../types.js';
import { ATTENTION_SPECS, type AttentionSpec, attentionInputs } from './attention.js';
import { LARGE_SCORE_SCALE } from './attention-inputs.js';
import {
  DIFF_ATTENTION_SPECS,
  type DiffAttentionSpec,
  diffAttentionInputs,
  diffAttentionOptions,
  subln,
} from './diff-attention.js';
import { defineCase } from './harness.js';
import { normal } from './inputs.js';

/**
 * Scores of ±1e4 whose rows are close to one-hot (the forward's 'one-hot' cases) leave dq and dk made
 * of e^−16-sized terms that cancel to round-off in any float32 kernel; the backward's large-score cases
 * tie each row's top keys instead (attention-inputs.ts, tiedQueries), so the gradient is of order one and
 * what remains is the float32 resolution of a log-sum-exp of ~1e4: the 'large scores' tolerance rows.
 * Non-causal, over an even number of keys: a causal row could see the first key of a pair alone.
 */
const LARGE_SCORES = {
  causal: false,
  tokens: 33,
  keys: 32,
  dk: 16,
  scale: LARGE_SCORE_SCALE,
  largeScores: 'tied',
} as const satisfies Partial<AttentionSpec>;

export const BACKWARD_ATTENTION_SPECS: readonly AttentionSpec[] = [
  ...ATTENTION_SPECS.filter((spec) => spec.largeScores === undefined),
  {
    label: 'scores ±1e4 with tied top keys, non-causal gqa2 d16 T33 S32',
    ...LARGE_SCORES,
    batch: 1,
    heads: 4,
    kvHeads: 2,
    dv: 16,
  },
];

/** One key and the fused norm: RMSNorm((1 − λ)·v) does not depend on λ, so dλ is eps-sized cancellation. */
const singleKeyNorm = (spec: DiffAttentionSpec) => spec.keys === 1 && spec.norm !== undefined;

export const BACKWARD_DIFF_ATTENTION_SPECS: readonly DiffAttentionSpec[] = [
  ...DIFF_ATTENTION_SPECS.filter((spec) => spec.largeScores === undefined && !singleKeyNorm(spec)),
  {
    label: 'v1 H1 d128 decode T1 keyOffset 8 keyLength 9 subln',
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    norm: subln(5),
    batch: 1,
    tokens: 1,
    keys: 9,
    heads: 1,
    kvHeads: 1,
    dk: 128,
    dv: 256,
    keyOffset: 8,
  },
  {
    label: 'v1 scores ±1e4 with tied top keys, non-causal d16 T33 S32 subln',
    ...LARGE_SCORES,
    keyMode: 'per-map',
    lambdaMode: 'per-head',
    norm: subln(1),
    batch: 1,
    heads: 2,
    kvHeads: 1,
    dv: 32,
  },
  {
    label: 'v2 scores ±1e4 with tied top keys, non-causal gqa2 d16 T33 S32',
    ...LARGE_SCORES,
    keyMode: 'shared',
    lambdaMode: 'per-token',
    batch: 1,
    heads: 4,
    kvHeads: 2,
    dv: 16,
  },
];

/** The tolerance variant of a spec's backward. */
const variantOf = (spec: AttentionSpec) => (spec.largeScores === 'tied' ? { variant: 'large scores' as const } : {});

function attentionStatisticsCase(spec: AttentionSpec): ConformanceCase {
  return defineCase(`attentionWithStatistics/${spec.label}`, 'attentionWithStatistics', async (ws, random) => {
    const { q, k, v, mask } = await attentionInputs(ws, random, spec);
    const r = tidy(() => ops.attentionWithStatistics(q.tensor, k.tensor, v.tensor, mask));
    ws.own(r.output);
    ws.own(r.statistics.logSumExp);
    const expected = reference.attentionWithStatistics(q.ref, k.ref, v.ref, mask);
    return [
      { label: 'output', actual: await ws.read(r.output), expected: expected.output },
      { label: 'logSumExp', actual: await ws.read(r.statistics.logSumExp), expected: expected.logSumExp },
    ];
  });
}

function attentionBackwardCase(spec: AttentionSpec): ConformanceCase {
  return defineCase(
    `attentionBackward/${spec.label}`,
    'attentionBackward',
    async (ws, random) => {
      const { q, k, v, mask } = await attentionInputs(ws, random, spec);
      const dOut = await ws.floats(normal(random, spec.batch * spec.tokens * spec.heads * spec.dv), [
        spec.batch,
        spec.tokens,
        spec.heads,
        spec.dv,
      ]);
      const g = tidy(() => {
        const { output, statistics } = ops.attentionWithStatistics(q.tensor, k.tensor, v.tensor, mask);
        return ops.attentionBackward(q.tensor, k.tensor, v.tensor, output, statistics.logSumExp, dOut.tensor, mask);
      });
      for (const t of [g.dq, g.dk, g.dv]) ws.own(t);
      const expected = reference.attentionBackward(q.ref, k.ref, v.ref, dOut.ref, mask);
      return [
        { label: 'dq', actual: await ws.read(g.dq), expected: expected.dq },
        { label: 'dk', actual: await ws.read(g.dk), expected: expected.dk },
        { label: 'dv', actual: await ws.read(g.dv), expected: expected.dv },
      ];
    },
    variantOf(spec),
  );
}

function diffAttentionStatisticsCase(spec: DiffAttentionSpec): ConformanceCase {
  return defineCase(`diffAttentionWithStatistics/${spec.label}`, 'diffAttentionWithStatistics', async (ws, random) => {
    const inputs = await diffAttentionInputs(ws, random, spec);
    const { q, k, v, lambda, weight, mask, norm } = inputs;
    const r = tidy(() =>
      ops.diffAttentionWithStatistics(q.tensor, k.tensor, v.tensor, lambda.tensor, diffAttentionOptions(inputs)),
    );
    ws.own(r.output);
    ws.own(r.statistics.logSumExp);
    const mapOutputs = ws.own(r.statistics.mapOutputs!);
    const expected = reference.diffAttentionWithStatistics(q.ref, k.ref, v.ref, lambda.ref, weight?.ref ?? null, {
      ...mask,
      norm,
    });
    return [
      { label: 'output', actual: await ws.read(r.output), expected: expected.output },
      { label: 'logSumExp', actual: await ws.read(r.statistics.logSumExp), expected: expected.logSumExp },
      { label: 'mapOutputs', actual: await ws.read(mapOutputs), expected: expected.mapOutputs },
    ];
  });
}

function diffAttentionBackwardCase(spec: DiffAttentionSpec): ConformanceCase {
  return defineCase(
    `diffAttentionBackward/${spec.label}`,
    'diffAttentionBackward',
    async (ws, random) => {
      const inputs = await diffAttentionInputs(ws, random, spec);
      const { q, k, v, lambda, weight, mask, norm } = inputs;
      const outShape = [spec.batch, spec.tokens, spec.heads, spec.dv];
      const dOut = await ws.floats(
        normal(
          random,
          outShape.reduce((a, b) => a * b),
        ),
        outShape,
      );
      const options = diffAttentionOptions(inputs);
      const g = tidy(() => {
        const { statistics } = ops.diffAttentionWithStatistics(q.tensor, k.tensor, v.tensor, lambda.tensor, options);
        return ops.diffAttentionBackward(q.tensor, k.tensor, v.tensor, lambda.tensor, statistics, dOut.tensor, options);
      });
      for (const t of [g.dq, g.dk, g.dv, g.dLambda, g.dNormWeight]) if (t) ws.own(t);
      const expected = reference.diffAttentionBackward(q.ref, k.ref, v.ref, lambda.ref, weight?.ref ?? null, dOut.ref, {
        ...mask,
        norm,
      });
      const checks = [
        { label: 'dq', actual: await ws.read(g.dq), expected: expected.dq },
        { label: 'dk', actual: await ws.read(g.dk), expected: expected.dk },
        { label: 'dv', actual: await ws.read(g.dv), expected: expected.dv },
        { label: 'dλ', actual: await ws.read(g.dLambda), expected: expected.dLambda },
      ];
      if (expected.dNormWeight) {
        if (!g.dNormWeight) ws.fail('dNormWeight: missing where the norm has a weight');
        else
          checks.push({ label: 'dNormWeight', actual: await ws.read(g.dNormWeight), expected: expected.dNormWeight });
      }
      return checks;
    },
    variantOf(spec),
  );
}

export function attentionBackwardCases(): ConformanceCase[] {
  return [
    ...DIFF_ATTENTION_SPECS.map(diffAttentionStatisticsCase),
    ...BACKWARD_DIFF_ATTENTION_SPECS.map(diffAttentionBackwardCase),
    ...ATTENTION_SPECS.map(attentionStatisticsCase),
    ...BACKWARD_ATTENTION_SPECS.map(attentionBackwardCase),
  ];
}
