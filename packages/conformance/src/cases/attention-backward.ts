/**
 * What training asks of both attention kernels, on the forward cases' shapes (MHA, GQA 2 and 4,
 * causal and not, keyOffset/keyLength against a cache with stale rows, head widths 16 to 128, scores
 * of ±1e4, λ below 0 and above 1, subln with and without weight, DIFF V1 and V2):
 *   *WithStatistics   the output and what the backward needs (each map's log-sum-exp and output)
 *   *Backward         every gradient, from the backend's own statistics, for a random output gradient
 */
import { ops, tidy } from '@diff-transformer/core';
import * as reference from '../reference/index.js';
import type { ConformanceCase } from '../types.js';
import { ATTENTION_SPECS, type AttentionSpec, attentionInputs } from './attention.js';
import {
  DIFF_ATTENTION_SPECS,
  type DiffAttentionSpec,
  diffAttentionInputs,
  diffAttentionOptions,
} from './diff-attention.js';
import { defineCase } from './harness.js';
import { normal } from './inputs.js';

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
  return defineCase(`attentionBackward/${spec.label}`, 'attentionBackward', async (ws, random) => {
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
  });
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
  return defineCase(`diffAttentionBackward/${spec.label}`, 'diffAttentionBackward', async (ws, random) => {
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
      else checks.push({ label: 'dNormWeight', actual: await ws.read(g.dNormWeight), expected: expected.dNormWeight });
    }
    return checks;
  });
}

export function attentionBackwardCases(): ConformanceCase[] {
  return [
    ...DIFF_ATTENTION_SPECS.map(diffAttentionStatisticsCase),
    ...DIFF_ATTENTION_SPECS.map(diffAttentionBackwardCase),
    ...ATTENTION_SPECS.map(attentionStatisticsCase),
    ...ATTENTION_SPECS.map(attentionBackwardCase),
  ];
}
