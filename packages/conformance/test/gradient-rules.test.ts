/**
 * Gradient rules with one classic bug each, as broken-kernels.ts does for kernels: a copy of core's
 * gradient table with one rule broken (run through valueAndGrads' `gradients` option) must fail every
 * per-op case of that op and no per-op case of another. The whole-model cases fail where the models use
 * the op — but not always: a loss rule that forgets its own gradient passes every model, whose loss is
 * the value itself, and fails only its per-op cases.
 */
import type { DifferentiableOp, GradientRules, GradientTable } from '@diff-transformer/core';
import { GRADIENTS, ops } from '@diff-transformer/core';
import { describe, expect, it } from 'vitest';
import type { ConformanceReport } from '../src/index.js';
import { conformanceCases, runConformance } from '../src/index.js';
import { naiveBackend } from './naive-backend.js';

interface RuleMutation {
  readonly name: string;
  readonly table: GradientTable;
  /** The op whose per-op cases must fail, all of them and only them. */
  readonly op: DifferentiableOp;
  /** Which whole-model gradient cases must fail with it. */
  readonly models: RegExp | null;
}

/** Core's table with one rule replaced. */
function broken<K extends DifferentiableOp>(op: K, backward: GradientRules[K]['backward']): GradientTable {
  const rules: GradientRules = GRADIENTS;
  return { ...GRADIENTS, [op]: { ...rules[op], backward } };
}

const { rotary, swiglu, diffAttention, crossEntropy, narrow } = GRADIENTS;

const MUTATIONS: readonly RuleMutation[] = [
  {
    name: 'rotary rotates dy forward (sin not negated): the classic sign error',
    op: 'rotary',
    table: broken('rotary', (dy, saved, attrs, context) =>
      rotary.backward(dy, { ...saved, sin: ops.scale(saved.sin!, -1, 0) }, attrs, context),
    ),
    models: /^gradients\//,
  },
  {
    name: "swiglu hands the gate's gradient to up and up's to the gate",
    op: 'swiglu',
    table: broken('swiglu', (dy, saved, attrs, context) => {
      const g = swiglu.backward(dy, saved, attrs, context);
      return { gate: g.up, up: g.gate };
    }),
    models: /^gradients\//,
  },
  {
    name: 'diffAttention gives λ a zero gradient',
    op: 'diffAttention',
    table: broken('diffAttention', (dy, saved, attrs, context) => {
      const g = diffAttention.backward(dy, saved, attrs, context);
      return { ...g, lambda: ops.scale(g.lambda!, 0, 0) };
    }),
    models: /^gradients\/(diff|v2)/,
  },
  {
    name: "crossEntropy ignores the loss's own gradient (hands dLogits on as if it were 1)",
    op: 'crossEntropy',
    table: broken('crossEntropy', (dy, saved, attrs, context) =>
      crossEntropy.backward(dy, saved, attrs, { ...context, isOnes: () => true }),
    ),
    models: null,
  },
  {
    name: 'narrow writes dy at the start of the axis, not at its slice',
    op: 'narrow',
    table: broken('narrow', (dy, saved, attrs, context) => narrow.backward(dy, saved, { ...attrs, start: 0 }, context)),
    models: null,
  },
];

const failing = (report: ConformanceReport, prefix: RegExp) =>
  report.cases.filter((r) => r.status === 'fail' && prefix.test(r.name)).map((r) => r.name);
const names = (prefix: RegExp) =>
  conformanceCases()
    .filter((c) => prefix.test(c.name))
    .map((c) => c.name);

describe('broken gradient rules', () => {
  let variants = 0;
  for (const mutation of MUTATIONS) {
    it(`fail their own op's cases: ${mutation.name}`, async () => {
      const backend = naiveBackend(`broken-rule-${variants++}`);
      const report = await runConformance(backend, {
        filter: /^(opGradient|gradients)\//,
        gradients: mutation.table,
      });
      const own = new RegExp(`^opGradient/${mutation.op} `);
      expect(names(own).length).toBeGreaterThanOrEqual(1);
      expect(failing(report, /^opGradient\//)).toEqual(names(own));
      expect(failing(report, /^gradients\//)).toEqual(mutation.models ? names(mutation.models) : []);
    });
  }

  it('the same cases pass with core’s own table', async () => {
    const report = await runConformance(naiveBackend('correct-rules'), {
      filter: /^(opGradient|gradients)\//,
      gradients: GRADIENTS,
    });
    expect(report.summary.fail).toBe(0);
  });
});
