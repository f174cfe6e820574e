import { describe, expect, it } from 'vitest';
import { judge } from '../src/cases/harness.js';
import { compare, maxAbsError, nmse, withinTolerance } from '../src/index.js';
import { refTensor } from '@diff-transformer/reference';

describe('metrics', () => {
  it('NMSE is Σ(a − b)² / Σb² and max abs error the largest |a − b|', () => {
    // errors 0.1 and −0.2 against a reference of squared norm 1 + 4 = 5
    expect(nmse([1.1, 1.8], [1, 2])).toBeCloseTo(0.05 / 5, 15);
    expect(maxAbsError([1.1, 1.8], [1, 2])).toBeCloseTo(0.2, 15);
    expect(nmse([1, 2], [1, 2])).toBe(0);
  });

  it('an all-zero reference falls back to the mean squared error', () => {
    expect(nmse([0, 0], [0, 0])).toBe(0);
    expect(nmse([], [])).toBe(0);
    expect(nmse([1e-20, 0], [0, 0])).toBeCloseTo(5e-41, 50);
    expect(nmse([1, 1], [0, 0])).toBe(1);
  });

  it('a NaN or ∞ where the reference is finite is counted and never within tolerance', () => {
    const c = compare([1, NaN, 3, Infinity], [1, 2, 3, 4]);
    expect(c.nonFinite).toBe(2);
    expect(c.firstNonFinite).toBe(1);
    expect(Number.isNaN(c.nmse)).toBe(true);
    expect(withinTolerance(c, Infinity)).toBe(false);
    expect(withinTolerance(compare([1, 2], [1, 2]), 0)).toBe(true);
  });

  it('a non-finite reference must be matched exactly and is left out of the NMSE', () => {
    expect(compare([NaN, 1], [NaN, 1])).toMatchObject({ nonFinite: 0, nmse: 0 });
    expect(compare([Infinity, 1], [-Infinity, 1]).nonFinite).toBe(1);
  });

  it('different lengths are an error, not a silent truncation', () => {
    expect(() => compare([1, 2], [1])).toThrow(/2 values.*1/);
  });

  it('the element bound: the worst element as a fraction of atol + rtol·|b|, and its index', () => {
    // errors 0.1 and 0.2 against bounds 0.1 + 0.1·1 and 0.1 + 0.1·2: ratios 0.5 and 0.667
    const c = compare([1.1, 1.8, 3], [1, 2, 3], { atol: 0.1, rtol: 0.1 });
    expect(c.elementError).toBeCloseTo(0.2 / 0.3, 12);
    expect(c.worstElement).toBe(1);
    // The ratio, not the absolute error, picks the element: 0.5 off at 100 is within 1% + 0.
    expect(compare([100.5, 1.2], [100, 1], { atol: 0, rtol: 0.01 }).worstElement).toBe(1);
    expect(compare([1, 2], [1, 2], { atol: 0, rtol: 0 })).toMatchObject({ elementError: 0, worstElement: -1 });
    expect(compare([1, 2.5], [1, 2], { atol: 0, rtol: 0 }).elementError).toBe(Infinity);
    expect(Number.isNaN(compare([NaN, 2], [1, 2], { atol: 1, rtol: 1 }).elementError)).toBe(true);
    // Without a bound: elementError 0, worstElement the largest error.
    expect(compare([1, 2.5, 3.1], [1, 2, 3])).toMatchObject({ elementError: 0, worstElement: 1 });
    expect(withinTolerance(compare([1.1], [1], { atol: 0.05, rtol: 0 }), Infinity)).toBe(false);
    expect(withinTolerance(compare([1.1], [1], { atol: 0.2, rtol: 0 }), Infinity)).toBe(true);
  });

  it('judge names the failing check and keeps the worst NMSE', () => {
    const limits = (nmse: number) => ({ nmse, atol: Infinity, rtol: 0 });
    const ok = { label: 'first', actual: { shape: [2], data: [1, 2] }, expected: refTensor([1, 2], [2]) };
    const off = { label: 'second', actual: { shape: [2], data: [1, 3] }, expected: refTensor([1, 2], [2]) };
    const bad = judge([ok, off], limits(1e-9));
    expect(bad.nmse).toBeCloseTo(1 / 5, 12);
    expect(bad.failure).toMatch(/^second: NMSE 2\.00e-1 > tolerance 1e-9/);
    expect(judge([ok], limits(0)).failure).toBeUndefined();
    const wrongShape = { ...ok, actual: { shape: [1, 2], data: [1, 2] } };
    expect(judge([wrongShape], limits(1)).failure).toMatch(/shape \[1, 2\], the reference has \[2\]/);
    const nan = { ...ok, actual: { shape: [2], data: [NaN, 2] } };
    expect(judge([nan], limits(Infinity)).failure).toMatch(/1 non-finite value\(s\).*index 0/);
  });

  it('judge fails one element over its bound even when the NMSE passes, and names the element', () => {
    const expected = refTensor(
      Array.from({ length: 6 }, (_, i) => i + 1),
      [2, 3],
    );
    const data = Array.from(expected.data);
    data[5] = 2 * data[5]; // the last element doubled: 6 → 12
    const outcome = judge([{ label: 'output', actual: { shape: [2, 3], data }, expected }], {
      nmse: 1,
      atol: 0.5,
      rtol: 0.1,
    });
    expect(outcome.nmse).toBeLessThan(1);
    expect(outcome.elementError).toBeCloseTo(6 / (0.5 + 0.6), 12);
    expect(outcome).toMatchObject({ tolerance: 1, atol: 0.5, rtol: 0.1 });
    expect(outcome.failure).toBe(
      'output: element 5 [1, 2] is 12, the reference 6: |a − b| = 6.00e+0 > atol + rtol·|b| = 1.10e+0 ' +
        '(atol 5.0e-1, rtol 1.0e-1)',
    );
  });
});
