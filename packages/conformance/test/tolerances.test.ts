import { KERNEL_NAMES, TRAINING_KERNEL_NAMES } from '@diff-transformer/core';
import { describe, expect, it } from 'vitest';
import type { ToleranceRow } from '../src/index.js';
import { TOLERANCES, elementBoundFor, toleranceFor, toleranceRow } from '../src/index.js';

describe('tolerance table', () => {
  it('has a float32 default for every kernel and the model-level checks', () => {
    for (const kernel of [...KERNEL_NAMES, 'model', 'decode', 'generate', 'gradients'] as const) {
      const row = TOLERANCES.find(
        (r) => r.kernel === kernel && r.dtype === undefined && r.backend === undefined && r.variant === undefined,
      );
      expect(row, kernel).toBeDefined();
      expect(toleranceFor(kernel, 'any', 'float32')).toBe(row!.nmse);
    }
  });

  it('copies, argmax and token ids are exact in every dtype', () => {
    for (const kernel of ['embedding', 'narrow', 'cacheWrite', 'argmax', 'generate'] as const) {
      for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
        expect(toleranceFor(kernel, 'cpu', dtype)).toBe(0);
        expect(elementBoundFor(kernel, 'cpu', dtype)).toEqual({ atol: 0, rtol: 0 });
      }
    }
  });

  it('float16 is looser than float32 and bfloat16 looser than float16', () => {
    for (const kernel of ['matmul', 'rmsNorm', 'softmax', 'attention', 'diffAttention'] as const) {
      expect(toleranceFor(kernel, 'cpu', 'float16')).toBeGreaterThan(toleranceFor(kernel, 'cpu', 'float32'));
      expect(toleranceFor(kernel, 'cpu', 'bfloat16')).toBeGreaterThan(toleranceFor(kernel, 'cpu', 'float16'));
      const [f32, f16, bf16] = (['float32', 'float16', 'bfloat16'] as const).map((d) =>
        elementBoundFor(kernel, 'cpu', d),
      );
      expect(f16.rtol).toBeGreaterThan(f32.rtol);
      expect(bf16.rtol).toBeGreaterThan(f16.rtol);
      expect(bf16.atol).toBeGreaterThanOrEqual(f16.atol);
    }
  });

  it('every element bound is exact for copies, and catches a doubled element (rtol < 1) elsewhere', () => {
    for (const row of TOLERANCES.filter((r) => r.atol !== undefined)) {
      expect(row.atol, `${row.kernel} ${row.dtype ?? ''}`).toBeGreaterThanOrEqual(0);
      if (row.nmse === 0) expect([row.atol, row.rtol], row.kernel).toEqual([0, 0]);
      else expect(row.rtol, `${row.kernel} ${row.dtype ?? ''}`).toBeLessThan(0.1);
    }
  });

  it('every kernel and model-level check has an element bound in every dtype', () => {
    for (const kernel of [...KERNEL_NAMES, 'model', 'decode', 'generate', 'gradients'] as const) {
      for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
        const { atol, rtol } = elementBoundFor(kernel, 'any', dtype);
        expect([Number.isFinite(atol), Number.isFinite(rtol)], `${kernel} ${dtype}`).toEqual([true, true]);
      }
    }
  });

  it('the training kernels have half-precision rows where float32 compute with half storage needs them', () => {
    // sumSquares returns float32 whatever its input; gradients run in float32 only.
    const own = TRAINING_KERNEL_NAMES.filter((k) => k !== 'sumSquares');
    for (const kernel of own) {
      for (const dtype of ['float16', 'bfloat16'] as const) {
        expect(toleranceRow(kernel, 'any', dtype).dtype, `${kernel} ${dtype}`).toBe(dtype);
        expect(elementBoundFor(kernel, 'any', dtype).rtol).toBeGreaterThan(elementBoundFor(kernel, 'any').rtol);
      }
    }
    expect(toleranceRow('sumSquares', 'any', 'bfloat16').dtype).toBeUndefined();
  });

  it("a variant's rows apply only to the cases of that variant, in every dtype", () => {
    for (const kernel of ['attentionBackward', 'diffAttentionBackward'] as const) {
      for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
        const plain = toleranceRow(kernel, 'cpu', dtype);
        const large = toleranceRow(kernel, 'cpu', dtype, TOLERANCES, 'large scores');
        expect(plain.variant, `${kernel} ${dtype}`).toBeUndefined();
        expect([large.variant, large.dtype ?? 'float32'], `${kernel} ${dtype}`).toEqual(['large scores', dtype]);
        // Looser in both gates, never in place of the default.
        expect(large.atol).toBeGreaterThan(plain.atol);
        expect(large.rtol).toBeGreaterThanOrEqual(plain.rtol);
        expect(large.nmse).toBeGreaterThanOrEqual(plain.nmse);
      }
    }
    expect(() => toleranceRow('matmul', 'cpu', 'float32', TOLERANCES, 'large scores')).toThrow(
      /no tolerance for kernel 'matmul' \(variant 'large scores'\) on backend 'cpu'/,
    );
  });

  it('a backend row beats the default of its dtype and leaves other backends and dtypes alone', () => {
    const table: ToleranceRow[] = [
      { kernel: 'matmul', nmse: 1e-9, atol: 1e-4, rtol: 1e-4, why: 'default' },
      { kernel: 'matmul', dtype: 'float16', nmse: 1e-5, atol: 4e-3, rtol: 4e-3, why: 'float16' },
      { kernel: 'matmul', backend: 'cuda', nmse: 1e-6, atol: 1e-3, rtol: 1e-3, why: 'TF32' },
      {
        kernel: 'matmul',
        backend: 'webgpu',
        dtype: 'float16',
        nmse: 1e-4,
        atol: 1e-2,
        rtol: 1e-2,
        why: 'webgpu float16',
      },
    ];
    expect(toleranceFor('matmul', 'cpu', 'float32', table)).toBe(1e-9);
    expect(toleranceFor('matmul', 'cuda', 'float32', table)).toBe(1e-6);
    expect(toleranceFor('matmul', 'cuda', 'float16', table)).toBe(1e-5);
    expect(toleranceFor('matmul', 'webgpu', 'float16', table)).toBe(1e-4);
    expect(toleranceFor('matmul', 'webgpu', 'float32', table)).toBe(1e-9);
    // bfloat16 has no row here: the float32 rows of the backend apply
    expect(toleranceFor('matmul', 'cuda', 'bfloat16', table)).toBe(1e-6);
    expect(toleranceRow('matmul', 'cuda', 'float32', table).why).toBe('TF32');
    expect(elementBoundFor('matmul', 'webgpu', 'float16', table)).toEqual({ atol: 1e-2, rtol: 1e-2 });
    expect(elementBoundFor('matmul', 'cuda', 'bfloat16', table)).toEqual({ atol: 1e-3, rtol: 1e-3 });
  });

  it('an unknown kernel is an error, not a silent 0 or ∞', () => {
    // @ts-expect-error: a kernel the table does not know
    expect(() => toleranceFor('nope', 'cpu')).toThrow(/no tolerance for kernel 'nope'/);
  });
});
