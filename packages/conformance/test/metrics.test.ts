import { describe, expect, it } from 'vitest';
import { judge } from '../src/cases/harness.js';
import { compare, maxAbsError, nmse, withinTolerance } from '../src/index.js';
import { refTensor } from '../src/reference/tensor.js';

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

  it('judge names the failing check and keeps the worst NMSE', () => {
    const ok = { label: 'first', actual: { shape: [2], data: [1, 2] }, expected: refTensor([1, 2], [2]) };
    const off = { label: 'second', actual: { shape: [2], data: [1, 3] }, expected: refTensor([1, 2], [2]) };
    const bad = judge([ok, off], 1e-9);
    expect(bad.nmse).toBeCloseTo(1 / 5, 12);
    expect(bad.failure).toMatch(/^second: NMSE 2\.00e-1 > tolerance 1e-9/);
    expect(judge([ok], 0).failure).toBeUndefined();
    const wrongShape = { ...ok, actual: { shape: [1, 2], data: [1, 2] } };
    expect(judge([wrongShape], 1).failure).toMatch(/shape \[1, 2\], the reference has \[2\]/);
    const nan = { ...ok, actual: { shape: [2], data: [NaN, 2] } };
    expect(judge([nan], Infinity).failure).toMatch(/1 non-finite value\(s\).*index 0/);
  });
});
