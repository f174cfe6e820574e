/**
 * The runner end to end on test backends: a correct one passes everything, each deliberately broken
 * one fails exactly the cases that can see its bug, missing kernels are 'unsupported', leaks and
 * exceptions fail.
 */
import type { Kernels } from '@diff-transformer/core';
import { memory, tensor } from '@diff-transformer/core';
import { describe, expect, it } from 'vitest';
import type { ConformanceCase, ConformanceReport } from '../src/index.js';
import { conformanceCases, formatReportTable, runCase, runConformance } from '../src/index.js';
import * as broken from './broken-kernels.js';
import { naiveBackend } from './naive-backend.js';

const failing = (report: ConformanceReport) => report.cases.filter((r) => r.status === 'fail').map((r) => r.name);
const names = (filter: (c: ConformanceCase) => boolean) =>
  conformanceCases()
    .filter(filter)
    .map((c) => c.name);
let variants = 0;
const brokenBackend = (overrides: Partial<Kernels>) => naiveBackend(`broken-${variants++}`, { overrides });

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
      expect(r.message).toBeUndefined();
    }
    expect(memory('naive-runner').liveStorages).toBe(0);
  });

  it('fails every diffAttention case when λ has the wrong sign, except where the norm hides it', async () => {
    const report = await runConformance(brokenBackend(broken.flippedLambda), { filter: /^(diffAttention|matmul)\// });
    // One key and a norm: RMSNorm((1 − λ)·v) = RMSNorm((1 + λ)·v) for 0 < λ < 1, so λ cannot show.
    expect(failing(report)).toEqual(
      names((c) => c.kernel === 'diffAttention' && c.name !== 'diffAttention/v1 H1 d128 T1 subln'),
    );
  });

  it('fails the grouped cases when k/v heads are tiled instead of repeated (GQA)', async () => {
    const report = await runConformance(brokenBackend(broken.tiledGqa), { filter: /^(diffAttention|attention)\// });
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
    const report = await runConformance(brokenBackend(broken.fixedScale), { filter: /^attention\// });
    expect(failing(report)).toEqual(names((c) => c.kernel === 'attention' && /explicit scale|±1e4/.test(c.name)));
  });

  it('fails the non-causal partial-cache cases when keyLength is ignored', async () => {
    const report = await runConformance(brokenBackend(broken.ignoresKeyLength), {
      filter: /^(diffAttention|attention)\//,
    });
    const expected = names(
      (c) => (c.kernel === 'attention' || c.kernel === 'diffAttention') && /non-causal keyLength/.test(c.name),
    );
    expect(expected).toHaveLength(2);
    expect(failing(report)).toEqual(expected);
  });

  it('fails the decode and chunk cases when keyOffset is ignored', async () => {
    const report = await runConformance(brokenBackend(broken.ignoresKeyOffset), { filter: /^(attention|decode)\// });
    expect(failing(report)).toEqual(
      names((c) => (c.kernel === 'attention' && /keyOffset/.test(c.name)) || /^decode\/standard/.test(c.name)),
    );
  });

  it('fails the fused-norm cases and the DIFF models when the subln weight is ignored', async () => {
    const report = await runConformance(brokenBackend(broken.ignoresNormWeight), {
      filter: /^(diffAttention|model)\//,
    });
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
    const report = await runConformance(brokenBackend(broken.oneWrongElement), { filter: /^matmul\// });
    expect(report.summary.fail).toBe(report.cases.length);
    for (const r of report.cases) expect(r.message, r.name).toMatch(/NMSE .* > tolerance/);
  });

  it('fails on a NaN whatever the NMSE threshold', async () => {
    const report = await runConformance(brokenBackend(broken.nanOutput), { filter: /^softmax\// });
    expect(report.summary.fail).toBe(report.cases.length);
    for (const r of report.cases) expect(r.message, r.name).toMatch(/non-finite value.*index 0/);
  });

  it('fails exactly the ±1e4 cases when softmax does not subtract the maximum', async () => {
    const report = await runConformance(brokenBackend(broken.unstableSoftmax), { filter: /^softmax\// });
    expect(failing(report)).toEqual(names((c) => c.kernel === 'softmax' && /±1e4/.test(c.name)));
  });

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
  const outcome = { nmse: 0, maxAbsError: 0, tolerance: 1e-9 };

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

describe('formatReportTable', () => {
  it('has one status column per backend, a summary line each, and the failures spelled out', async () => {
    const filter = /^matmul\/M1 K1 N1$|^softmax\/x \[5, 1\]/;
    const good = await runConformance(naiveBackend('naive-table'), { filter });
    const bad = await runConformance(
      naiveBackend('naive-table-broken', { overrides: broken.oneWrongElement, omit: ['softmax'] }),
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
