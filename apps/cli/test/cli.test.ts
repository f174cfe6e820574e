import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../dist/difftx.js', import.meta.url));

function difftx(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 600_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('difftx', () => {
  it('info --json lists the CPU backend as available with its device', () => {
    const r = difftx('info', '--json');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    const cpu = doc.backends.find((b: { name: string }) => b.name === 'cpu');
    expect(cpu).toMatchObject({ name: 'cpu', available: true });
    expect(typeof cpu.device).toBe('string');
    expect(doc.default).toBeTypeOf('string');
  });

  it('exits 2 with one line for a bad flag, an unknown backend or an unknown command', () => {
    for (const args of [
      ['info', '--bogus'],
      ['bench', '--backend', 'tpu', '--op', 'matmul', '--shape', '2x2x2'],
      ['conformance', '--backend', 'tpu'],
      ['frobnicate'],
      ['bench', '--op', 'matmul', '--shape', '2x2'],
      ['bench', '--op', 'matmul', '--threads', '2'],
      ['bench', '--backend', 'cpu', '--op', 'matmul', '--threads', '0'],
      ['bench', '--backend', 'cpu', '--op', 'matmul', '--engine', 'gpu'],
    ]) {
      const r = difftx(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^difftx: /);
    }
    expect(difftx('conformance', '--backend', 'tpu').stderr).toContain("unknown backend 'tpu'; registered backends: cpu");
  });

  it('conformance --backend cpu --json passes every case, at least 60 of them', () => {
    const r = difftx('conformance', '--backend', 'cpu', '--json');
    expect(r.stderr).not.toMatch(/\bfail\b.*—/);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.backend).toBe('cpu');
    expect(report.cases.length).toBeGreaterThanOrEqual(60);
    expect(report.summary).toEqual({ pass: report.cases.length, fail: 0, unsupported: 0 });
    for (const c of report.cases) {
      expect(Object.keys(c)).toEqual(expect.arrayContaining(['name', 'kernel', 'status', 'nmse', 'maxAbsError', 'tolerance']));
      expect(c.nmse).toBeLessThanOrEqual(c.tolerance);
    }
    const kernels = new Set(report.cases.map((c: { kernel: string }) => c.kernel));
    for (const k of ['matmul', 'diffAttention', 'attention', 'rotary', 'rmsNorm']) expect(kernels).toContain(k);
  });

  it('conformance --filter narrows the cases and --json on all gives an array', () => {
    const r = difftx('conformance', '--backend', 'all', '--filter', '^matmul', '--json');
    expect(r.code).toBe(0);
    const reports = JSON.parse(r.stdout);
    expect(Array.isArray(reports)).toBe(true);
    const cpu = reports.find((x: { backend: string }) => x.backend === 'cpu');
    expect(cpu.cases.length).toBeGreaterThan(0);
    expect(cpu.cases.every((c: { name: string }) => /^matmul/.test(c.name))).toBe(true);
  });

  it('bench --json reports the median, GFLOP/s and tokens/s in the documented shape', () => {
    const r = difftx('bench', '--backend', 'cpu', '--op', 'diff-attention', '--shape', '1,64,2,16', '--shape', '1,33,1,8', '--runs', '3', '--json');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.backend).toBe('cpu');
    expect(doc.results).toHaveLength(2);
    for (const result of doc.results) {
      expect(result.op).toBe('diff-attention');
      expect(result.medianMs).toBeGreaterThan(0);
      expect(result.gflops).toBeGreaterThan(0);
      expect(result.tokensPerSecond).toBeGreaterThan(0);
    }
    expect(r.stderr).toContain('diff-attention 1,64,2,16');
  });

  it('bench --engine typescript runs the TypeScript kernels', () => {
    const r = difftx('bench', '--backend', 'cpu', '--op', 'matmul', '--shape', '32x32x32', '--engine', 'typescript', '--runs', '3', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).device).toBe('CPU (TypeScript, 1 thread, float32)');
  });

  it('bench --threads N runs the cpu backend on N threads', () => {
    for (const threads of ['1', '2']) {
      const r = difftx('bench', '--backend', 'cpu', '--op', 'matmul', '--shape', '96x80x64', '--threads', threads, '--runs', '3', '--json');
      expect(r.code).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.device).toMatch(new RegExp(`, ${threads} threads?, float32\\)$`));
      expect(doc.results[0].gflops).toBeGreaterThan(0);
    }
  });
});
