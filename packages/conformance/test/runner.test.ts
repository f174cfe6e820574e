/**
 * The runner end to end on test backends: a correct one passes everything, each deliberately broken
 * one fails exactly the cases that can see its bug, missing kernels are 'unsupported', leaks and
 * exceptions fail.
 */
import type { Backend, BackendGuards, GuardViolation } from '@diff-transformer/core';
import { memory, tensor } from '@diff-transformer/core';
import { describe, expect, it } from 'vitest';
import type { AttentionSpec } from '../src/cases/attention.js';
import { BACKWARD_ATTENTION_SPECS, BACKWARD_DIFF_ATTENTION_SPECS } from '../src/cases/attention-backward.js';
import type { ConformanceCase, ConformanceReport, FloatDType } from '../src/index.js';
import {
  TOLERANCES,
  conformanceCases,
  elementBoundFor,
  formatReportTable,
  formatSummaryTable,
  runCase,
  runConformance,
} from '../src/index.js';
import * as broken from './broken-kernels.js';
import { float32Backend } from './float32-backend.js';
import { naiveBackend, naiveKernels } from './naive-backend.js';

const failing = (report: ConformanceReport) => report.cases.filter((r) => r.status === 'fail').map((r) => r.name);
/** The names of the default (not large) cases that a predicate selects, in suite order. */
const names = (filter: (c: ConformanceCase) => boolean) =>
  conformanceCases()
    .filter((c) => !c.large && filter(c))
    .map((c) => c.name);
/** The default backward cases a predicate on their spec selects, in suite order. */
const backward = (pick: (spec: AttentionSpec & { norm?: unknown }) => boolean) => {
  const picked = new Set([
    ...BACKWARD_ATTENTION_SPECS.filter(pick).map((spec) => `attentionBackward/${spec.label}`),
    ...BACKWARD_DIFF_ATTENTION_SPECS.filter(pick).map((spec) => `diffAttentionBackward/${spec.label}`),
  ]);
  return names((c) => picked.has(c.name));
};
const BACKWARD = /^(attentionBackward|diffAttentionBackward|gradients)\//;
let variants = 0;
const brokenBackend = (mutate: broken.Mutation) =>
  naiveBackend(`broken-${variants++}`, { overrides: mutate(naiveKernels()) });

/**
 * Where the mutations run: float32 on the naive backend (the float64 reference, stored as float32), and
 * float16 and bfloat16 on the float32 double that stores half precision, as a device does. Every bug must
 * show in every dtype: the half-precision rows are looser, not blind.
 */
const PRECISIONS: ReadonlyArray<{ dtype: FloatDType; mutated: (mutate: broken.Mutation) => Backend }> = [
  { dtype: 'float32', mutated: brokenBackend },
  ...(['float16', 'bfloat16'] as const).map((dtype) => ({
    dtype,
    mutated: (mutate: broken.Mutation) => float32Backend(`broken-${dtype}-${variants++}`, { storage: true, mutate }),
  })),
];

describe('runConformance', () => {
  it('passes every case on a correct backend and reports the measurements', async () => {
    const calls: number[] = [];
    const report = await runConformance(naiveBackend('naive-runner'), {
      onCase: (_r, index, total) => calls.push(index, total),
    });
    expect(report.summary).toEqual({ pass: report.cases.length, fail: 0, unsupported: 0 });
    expect(report).toMatchObject({ backend: 'naive-runner', dtype: 'float32' });
    expect(report.device).toMatch(/test double/);
    expect(calls.slice(0, 4)).toEqual([0, report.cases.length, 1, report.cases.length]);
    for (const r of report.cases) {
      expect(r.nmse, r.name).not.toBeNull();
      expect(r.nmse!, r.name).toBeLessThanOrEqual(r.tolerance);
      expect(r.elementError!, r.name).toBeLessThanOrEqual(1);
      expect(r.message).toBeUndefined();
    }
    expect(memory('naive-runner').liveStorages).toBe(0);
    // The whole suite (about 300 cases) on the float64 test double: 20-30 s alone, up to 100 s while turbo
    // runs every package's tests at once on a busy 2-core machine.
  }, 240_000);
});

describe.each(PRECISIONS)('mutations at $dtype', ({ dtype, mutated }) => {
  const run = (mutate: broken.Mutation, filter: RegExp) => runConformance(mutated(mutate), { filter, dtype });

  it('fails every diffAttention case when λ has the wrong sign, except where the norm hides it', async () => {
    const report = await run(broken.flippedLambda, /^(diffAttention|matmul)\//);
    // One key and a norm: RMSNorm((1 − λ)·v) = RMSNorm((1 + λ)·v) for 0 < λ < 1, so λ cannot show.
    expect(failing(report)).toEqual(
      names((c) => c.kernel === 'diffAttention' && c.name !== 'diffAttention/v1 H1 d128 T1 subln'),
    );
  });

  it('fails the grouped cases when k/v heads are tiled instead of repeated (GQA)', async () => {
    const report = await run(broken.tiledGqa, /^(diffAttention|attention)\//);
    const failed = failing(report);
    // h mod Hkv equals ⌊h·Hkv/H⌋ only when Hkv = 1 or Hkv = H.
    const forward = (c: ConformanceCase) => c.kernel === 'diffAttention' || c.kernel === 'attention';
    const grouped = names((c) => forward(c) && /H4 Hkv2/.test(c.name));
    const ungrouped = names((c) => forward(c) && /mha|Hkv1/.test(c.name));
    expect(grouped.length).toBeGreaterThanOrEqual(3);
    expect(ungrouped.length).toBeGreaterThanOrEqual(5);
    for (const name of grouped) expect(failed).toContain(name);
    for (const name of ungrouped) expect(failed).not.toContain(name);
    expect(failed.length).toBeGreaterThanOrEqual(8);
  });

  it('fails the cases with a non-default scale when the kernel ignores it', async () => {
    const report = await run(broken.fixedScale, /^attention\//);
    expect(failing(report)).toEqual(names((c) => c.kernel === 'attention' && /explicit scale|±1e4/.test(c.name)));
  });

  it('fails the non-causal partial-cache cases when keyLength is ignored', async () => {
    const report = await run(broken.ignoresKeyLength, /^(diffAttention|attention)\//);
    const expected = names(
      (c) => (c.kernel === 'attention' || c.kernel === 'diffAttention') && /non-causal keyLength/.test(c.name),
    );
    expect(expected).toHaveLength(2);
    expect(failing(report)).toEqual(expected);
  });

  it('fails the decode and chunk cases when keyOffset is ignored', async () => {
    const report = await run(broken.ignoresKeyOffset, /^(attention|decode)\//);
    expect(failing(report)).toEqual(
      names((c) => (c.kernel === 'attention' && /keyOffset/.test(c.name)) || /^decode\/standard/.test(c.name)),
    );
  });

  it('fails the fused-norm cases and the DIFF models when the subln weight is ignored', async () => {
    const report = await run(broken.ignoresNormWeight, /^(diffAttention|model)\//);
    const failed = failing(report);
    expect(failed.filter((n) => n.startsWith('diffAttention/'))).toEqual(
      names((c) => c.kernel === 'diffAttention' && /subln|norm eps/.test(c.name) && !/not affine/.test(c.name)),
    );
    expect(failed.filter((n) => n.startsWith('model/'))).toEqual(
      // Models whose per-head norm has no weight, or that have no norm at all, have nothing to ignore.
      names(
        (c) =>
          c.kernel === 'model' && /^model\/diff /.test(c.name) && !/subln without weight|without subln/.test(c.name),
      ),
    );
  });

  it('fails every matmul case for one wrong output element', async () => {
    const report = await run(broken.oneWrongElement, /^matmul\//);
    expect(report.summary.fail).toBe(report.cases.length);
    for (const r of report.cases) expect(r.message, r.name).toMatch(/output: (NMSE .* > tolerance|element \d+)/);
  });

  it('fails on a NaN whatever the NMSE threshold', async () => {
    const report = await run(broken.nanOutput, /^softmax\//);
    expect(report.summary.fail).toBe(report.cases.length);
    for (const r of report.cases) expect(r.message, r.name).toMatch(/non-finite value.*index 0/);
  });

  it('fails exactly the ±1e4 cases when softmax does not subtract the maximum', async () => {
    const report = await run(broken.unstableSoftmax, /^softmax\//);
    expect(failing(report)).toEqual(names((c) => c.kernel === 'softmax' && /±1e4/.test(c.name)));
  });

  it('fails every differential backward case and the DIFF models when dλ is dropped', async () => {
    const report = await run(broken.droppedLambdaGradient, BACKWARD);
    const expected = names((c) => c.kernel === 'diffAttentionBackward' || /^gradients\/diff/.test(c.name));
    expect(expected.length).toBeGreaterThanOrEqual(20);
    expect(failing(report)).toEqual(expected);
  });

  it('fails the grouped backward cases and GQA models when dk and dv are not summed over the group', async () => {
    const report = await run(broken.ungroupedGqaGradients, BACKWARD);
    const expected = [
      ...backward((spec) => spec.heads > spec.kvHeads),
      ...names((c) => /^gradients\/.* gqa/.test(c.name)),
    ];
    expect(expected.length).toBeGreaterThanOrEqual(20);
    expect(failing(report)).toEqual(expected);
  });

  it('fails the causal backward cases whose first row sees fewer keys, and every model, when the mask is ignored', async () => {
    const report = await run(broken.causalIgnoredInBackward, BACKWARD);
    // A decode step (keyOffset + 1 = keyLength) sees every key anyway; so does a non-causal row.
    const masked = (spec: AttentionSpec) =>
      (spec.causal ?? true) && (spec.keyOffset ?? 0) + 1 < (spec.keyLength ?? spec.keys);
    const expected = [...backward(masked), ...names((c) => c.kernel === 'gradients')];
    expect(expected.length).toBeGreaterThanOrEqual(20);
    expect(failing(report)).toEqual(expected);
  });

  it("fails the fused-norm backward cases and the DIFF V1 models when the norm's gradient is omitted", async () => {
    const report = await run(broken.normGradientOmitted, BACKWARD);
    const expected = [
      ...backward((spec) => spec.norm !== undefined),
      // A DIFF V1 model without the per-head norm (the ablation) has no norm gradient to omit.
      ...names((c) => /^gradients\/diff /.test(c.name) && !/without subln/.test(c.name)),
    ];
    expect(expected.length).toBeGreaterThanOrEqual(15);
    expect(failing(report)).toEqual(expected);
  });

  it("fails every model's gradients, on the embedding alone, when the lookup's gradient is lost", async () => {
    const report = await run(broken.droppedLookupGradient, /^(embeddingBackward|gradients)\//);
    expect(failing(report)).toEqual(names((c) => c.kernel === 'embeddingBackward' || c.kernel === 'gradients'));
    // Tied or not, only the embedding's gradient is wrong: a tied one still gets the LM head's half.
    for (const r of report.cases.filter((c) => c.kernel === 'gradients')) {
      for (const failure of r.message!.split('; ')) expect(failure, r.name).toMatch(/^d embed_tokens\.weight: /);
    }
  });

  it('fails every kernel case whose last output element, doubled, leaves its element bound', async () => {
    const calls: broken.DoubledCall[] = [];
    const backend = mutated(broken.doubledLastElement(calls));
    // Cases of more than one kernel (and cacheWrite, whose output is its input): none to double alone.
    const wholeModel = ['model', 'decode', 'generate', 'gradients', 'opGradient', 'cacheWrite'];
    const kernelCases = conformanceCases().filter((c) => !c.large && !wholeModel.includes(c.kernel));
    const visible: string[] = [];
    for (const testCase of kernelCases) {
      calls.length = 0;
      const result = await runCase(testCase, backend, { dtype });
      // Doubling b is an error of |b|: the bound atol + rtol·|b| can see it when |b|·(1 − rtol) > atol.
      const { atol, rtol } = elementBoundFor(testCase.kernel, backend.name, dtype, TOLERANCES, testCase.variant);
      const seen = calls.some((call) => call.kernel === testCase.kernel && Math.abs(call.value) * (1 - rtol) > atol);
      if (seen) {
        visible.push(testCase.name);
        expect(result.status, `${testCase.name}: ${JSON.stringify(calls)}`).toBe('fail');
      }
    }
    // Invisible: an exact zero (argmax ties, softmax of ±1e4, crossEntropy over one class), or a value below
    // atol (sigmoid of −100, a saturated swiglu gate, attention gradients of a few 1e-3 against half
    // precision's 16u). The guard keeps the test from passing vacuously: most cases, and every kernel, see it.
    const invisible = kernelCases.filter((c) => !visible.includes(c.name));
    expect(invisible.length, invisible.map((c) => c.name).join('\n')).toBeLessThanOrEqual(
      Math.floor(kernelCases.length * 0.12),
    );
    const kernels = new Set(kernelCases.map((c) => c.kernel));
    const seenKernels = new Set(kernelCases.filter((c) => visible.includes(c.name)).map((c) => c.kernel));
    expect([...kernels].filter((k) => !seenKernels.has(k))).toEqual([]);
  });
});

describe('runConformance, beyond results', () => {
  it('reports missing kernels as unsupported, apart from failures', async () => {
    const backend = naiveBackend('naive-no-softmax', { omit: ['softmax'] });
    const report = await runConformance(backend, { filter: /^(softmax|generate|add)\// });
    const unsupported = report.cases.filter((r) => r.status === 'unsupported');
    expect(unsupported.map((r) => r.name)).toEqual(
      names((c) => c.kernel === 'softmax' || /^generate\/sampling/.test(c.name)),
    );
    for (const r of unsupported) {
      expect(r).toMatchObject({ nmse: null, maxAbsError: null });
      expect(r.message).toMatch(/kernel 'softmax' is not supported by backend 'naive-no-softmax'/);
    }
    expect(report.summary).toEqual({
      pass: report.cases.length - unsupported.length,
      fail: 0,
      unsupported: unsupported.length,
    });
  });

  it('a strict run fails what the backend reports as unsupported, saying so', async () => {
    const backend = naiveBackend('naive-strict-no-softmax', { omit: ['softmax'] });
    const report = await runConformance(backend, { filter: /^(softmax|add)\//, strict: true });
    const missing = names((c) => c.kernel === 'softmax');
    expect(failing(report)).toEqual(missing);
    expect(report.summary).toEqual({
      pass: report.cases.length - missing.length,
      fail: missing.length,
      unsupported: 0,
    });
    for (const r of report.cases.filter((c) => c.status === 'fail')) {
      expect(r.message).toMatch(
        /^unsupported, and the run is strict: .*kernel 'softmax' is not supported by backend 'naive-strict-no-softmax'/,
      );
    }
    // A dtype the backend cannot store is unsupported too.
    const f16 = await runConformance(naiveBackend('naive-strict-f32-only'), {
      filter: /^rmsNorm\//,
      dtype: 'float16',
      strict: true,
    });
    expect(f16.summary.fail).toBe(f16.cases.length);
  });

  it('runs the large cases only when asked', async () => {
    const filter = /^matmul\/M(520|[1-4] K1000)/;
    expect((await runConformance(naiveBackend('naive-small'), { filter })).cases).toHaveLength(0);
    const report = await runConformance(naiveBackend('naive-large'), { filter, large: true });
    expect(report.cases.length).toBe(8);
    expect(report.summary.pass).toBe(8);
  });

  it('reports a dtype the backend cannot store as unsupported; model cases still run in float32', async () => {
    const report = await runConformance(naiveBackend('naive-f32-only'), {
      filter: /^(rmsNorm|model)\//,
      dtype: 'float16',
    });
    expect(report.dtype).toBe('float16');
    for (const r of report.cases) {
      if (r.kernel === 'rmsNorm')
        expect(r).toMatchObject({ status: 'unsupported', message: expect.stringMatching(/does not store float16/) });
      else expect(r.status, r.name).toBe('pass');
    }
  });

  it('fails a case whose kernel throws, with the message, and without leaking', async () => {
    const backend = brokenBackend(broken.throwingAdd);
    const report = await runConformance(backend, { filter: /^(add|model)\// });
    expect(report.summary.fail).toBe(report.cases.length);
    for (const r of report.cases) {
      expect(r.message).toBe('TypeError: add exploded');
      expect(r.nmse).toBeNull();
    }
    expect(memory(backend.name).liveStorages).toBe(0);
  });
});

describe('runCase', () => {
  const backend = naiveBackend('naive-run-case');
  const outcome = { nmse: 0, maxAbsError: 0, elementError: 0, tolerance: 1e-9, atol: 1e-4, rtol: 1e-4 };

  it('fails a case that leaves a storage alive', async () => {
    const leaked: ReturnType<typeof tensor>[] = [];
    const leaky: ConformanceCase = {
      name: 'add/leaky',
      kernel: 'add',
      run: async (b) => {
        leaked.push(tensor([1, 2], [2], { backend: b }));
        return outcome;
      },
    };
    const result = await runCase(leaky, backend);
    expect(result).toMatchObject({ status: 'fail', nmse: 0, message: "left 1 storage(s) alive on 'naive-run-case'" });
    leaked[0].dispose();
  });

  it('fails an outcome over its tolerance or with a failure, and says why', async () => {
    const over = await runCase(
      { name: 'add/over', kernel: 'add', run: async () => ({ ...outcome, nmse: 1e-3 }) },
      backend,
    );
    expect(over).toMatchObject({ status: 'fail', message: 'NMSE 0.001 > tolerance 1e-9' });
    const flagged = await runCase(
      { name: 'add/flagged', kernel: 'add', run: async () => ({ ...outcome, failure: 'ids differ' }) },
      backend,
    );
    expect(flagged).toMatchObject({ status: 'fail', message: 'ids differ' });
    const thrown = await runCase(
      { name: 'add/thrown', kernel: 'add', run: async () => Promise.reject(new RangeError('no')) },
      backend,
    );
    expect(thrown).toMatchObject({ status: 'fail', nmse: null, tolerance: 1e-10, message: 'RangeError: no' });
  });
});

describe('runCase in guard mode', () => {
  /** A backend whose guards report what a test gives them, and record how they were driven. */
  function guarded(name: string, found: GuardViolation[]) {
    const calls: string[] = [];
    let enabled = false;
    const guards: BackendGuards = {
      enable: (on) => {
        enabled = on;
        calls.push(on ? 'on' : 'off');
      },
      get enabled() {
        return enabled;
      },
      check: async () => {
        calls.push(`check while ${enabled ? 'on' : 'off'}`);
        return found;
      },
    };
    return { backend: { ...naiveBackend(name), guards }, calls };
  }
  const [addCase] = conformanceCases().filter((c) => c.name === 'add/a, b [7, 33]');

  it('turns guard mode on for the case, checks, turns it off, and passes when every canary held', async () => {
    const { backend, calls } = guarded('naive-guarded', []);
    expect((await runCase(addCase, backend)).status).toBe('pass');
    expect(calls).toEqual(['on', 'check while on', 'off']);
  });

  it('fails a case whose kernel wrote outside its storage, saying where', async () => {
    const { backend } = guarded('naive-overwritten', [{ size: 231, dtype: 'float32', side: 'after', words: 1 }]);
    const result = await runCase(addCase, backend);
    expect(result.status).toBe('fail');
    expect(result.nmse).toBeLessThan(1e-12);
    expect(result.message).toBe(
      'a kernel wrote outside its storage: 1 canary word(s) after the last element of a float32 storage of 231',
    );
  });

  it('leaves guard mode on when the caller turned it on, and off with guards: false', async () => {
    const { backend, calls } = guarded('naive-guarded-outside', []);
    backend.guards.enable(true);
    await runCase(addCase, backend);
    expect(calls).toEqual(['on', 'check while on']);
    const off = guarded('naive-unguarded', [{ size: 1, dtype: 'float32', side: 'before', words: 1 }]);
    expect((await runCase(addCase, off.backend, { guards: false })).status).toBe('pass');
    expect(off.calls).toEqual([]);
  });
});

describe('formatReportTable', () => {
  it('has one status column per backend, a summary line each, and the failures spelled out', async () => {
    const filter = /^matmul\/M1 K1 N1$|^softmax\/x \[5, 1\]/;
    const good = await runConformance(naiveBackend('naive-table'), { filter });
    const bad = await runConformance(
      naiveBackend('naive-table-broken', { overrides: broken.oneWrongElement(naiveKernels()), omit: ['softmax'] }),
      { filter },
    );
    const table = formatReportTable([good, bad]);
    const lines = table.split('\n');
    expect(lines[0]).toMatch(/^case\s+kernel\s+naive-table\s+naive-table-broken$/);
    expect(lines[2]).toMatch(/^matmul\/M1 K1 N1\s+matmul\s+pass \S+\s+FAIL \d\.\de[-+]\d+$/);
    expect(lines[3]).toMatch(/^softmax\/x \[5, 1\] \(width 1\)\s+softmax\s+pass 0\s+unsupported$/);
    expect(table).toContain(
      'naive-table (float64 reference with float32 storage (test double), float32): 2 pass, 0 fail, 0 unsupported',
    );
    expect(table).toContain(
      'naive-table-broken (float64 reference with float32 storage (test double), float32): ' +
        '0 pass, 1 fail, 1 unsupported',
    );
    expect(table).toMatch(/failures:\n {2}naive-table-broken {2}matmul\/M1 K1 N1: output: NMSE/);
  });
});

describe('formatSummaryTable', () => {
  it('has a row per kernel family and a column per backend, then every failure in full', async () => {
    const filter = /^matmul\/M1 K1 N1$|^matmul\/M33|^softmax\/x \[5, 1\]/;
    const good = await runConformance(naiveBackend('naive-summary'), { filter });
    const bad = await runConformance(
      naiveBackend('naive-summary-broken', { overrides: broken.oneWrongElement(naiveKernels()), omit: ['softmax'] }),
      { filter },
    );
    const matmuls = good.cases.filter((r) => r.kernel === 'matmul').length;
    expect(matmuls).toBeGreaterThan(1);
    const lines = formatSummaryTable([good, bad]).split('\n');
    expect(lines[0]).toMatch(/^kernel\s+naive-summary\s+naive-summary-broken$/);
    expect(lines[2]).toMatch(
      new RegExp(`^matmul\\s+${matmuls}/${matmuls}\\s+\\S+\\s+0/${matmuls} \\(${matmuls} FAIL\\)\\s+\\S+$`),
    );
    expect(lines[3]).toMatch(/^softmax\s+1\/1\s+\S+\s+0\/1 \(1 unsupported\)$/);
    // header and rule, 2 families, the legend (after a blank line), 2 summary lines, the failures
    expect(lines).toHaveLength(4 + 2 + 3 + 2 + matmuls);
    const failures = lines.slice(lines.indexOf('failures:') + 1);
    expect(failures).toHaveLength(matmuls);
    for (const line of failures) expect(line).toMatch(/^ {2}naive-summary-broken {2}matmul\/\S.*: output: NMSE/);
  });
});
