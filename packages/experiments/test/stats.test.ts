import {
  logGamma,
  magnitudeStatistics,
  pairedTTest,
  regularizedIncompleteBeta,
  spread,
  studentTCdf,
  studentTQuantile,
} from '../src/index.js';
import { describe, expect, it } from 'vitest';

describe('statistics', () => {
  it('mean and sample standard deviation', () => {
    const s = spread([2, 4, 4, 4, 5, 5, 7, 9]);
    expect(s.mean).toBe(5);
    expect(s.std).toBeCloseTo(Math.sqrt(32 / 7), 14);
    expect(spread([3]).std).toBe(0);
  });

  it("Student's t distribution against tabulated values", () => {
    expect(logGamma(5)).toBeCloseTo(Math.log(24), 12);
    expect(logGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 12);
    // I_x(1, 1) = x; I_x(a, b) = 1 − I_{1−x}(b, a).
    expect(regularizedIncompleteBeta(0.3, 1, 1)).toBeCloseTo(0.3, 14);
    expect(regularizedIncompleteBeta(0.2, 2.5, 4) + regularizedIncompleteBeta(0.8, 4, 2.5)).toBeCloseTo(1, 14);
    // Two-sided 95 % critical values (any statistics table) and the Cauchy case df = 1.
    expect(studentTQuantile(0.975, 1)).toBeCloseTo(12.706205, 5);
    expect(studentTQuantile(0.975, 2)).toBeCloseTo(4.302653, 5);
    expect(studentTQuantile(0.975, 4)).toBeCloseTo(2.776445, 5);
    expect(studentTQuantile(0.975, 30)).toBeCloseTo(2.042272, 5);
    expect(studentTCdf(1, 1)).toBeCloseTo(0.75, 12);
    expect(studentTCdf(0, 7)).toBeCloseTo(0.5, 14);
    expect(studentTCdf(-2.228139, 10)).toBeCloseTo(0.025, 6);
  });

  it('a paired t-test: difference, interval, t and p as worked by hand', () => {
    // Differences −0.05, −0.06, +0.01: mean −1/30, sd = √(0.0028667 / 2) = 0.0378594, t = mean / (sd / √3).
    const test = pairedTTest([1.3, 1.25, 1.41], [1.35, 1.31, 1.4]);
    expect(test.n).toBe(3);
    expect(test.meanDifference).toBeCloseTo(-1 / 30, 12);
    expect(test.stdDifference).toBeCloseTo(0.0378594, 6);
    expect(test.t).toBeCloseTo(-1.524986, 5);
    // With 2 degrees of freedom the distribution is closed-form: F(t) = 1/2 + t / (2·√(2 + t²)).
    const t = Math.abs(test.t!);
    expect(test.p).toBeCloseTo(2 * (0.5 - t / (2 * Math.sqrt(2 + t * t))), 10);
    const [lo, hi] = test.ci95!;
    expect((lo + hi) / 2).toBeCloseTo(test.meanDifference, 12);
    expect(hi - lo).toBeCloseTo(2 * 4.302653 * (test.stdDifference / Math.sqrt(3)), 5);
    // One pair: no test; identical differences: no spread, p = 0 (or 1 when they are all 0).
    expect(pairedTTest([1], [2])).toMatchObject({ n: 1, ci95: null, p: null, t: null });
    expect(pairedTTest([2, 3], [1, 2]).p).toBe(0);
    expect(pairedTTest([2, 3], [2, 3]).p).toBe(1);
    expect(() => pairedTTest([1, 2], [1])).toThrow(/expected as many values in b as in a \(2\), got 1/);
  });

  it('top-k and median magnitudes over the finite values only', () => {
    const values = Float64Array.from([-9, 1, Number.NEGATIVE_INFINITY, 3, -2, 0.5, Number.NaN]);
    const s = magnitudeStatistics(values, [1, 2, 10]);
    expect(s.count).toBe(5);
    expect(s.top).toEqual([9, 3, Number.NaN]);
    expect(s.median).toBe(2);
  });
});
