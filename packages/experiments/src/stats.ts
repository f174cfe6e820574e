/**
 * The statistics the report states: mean and sample standard deviation over seeds, and a paired
 * Student t-test with its 95 % confidence interval for a difference between two models trained with
 * the same seeds (same data order, same schedule). Exact: Student's t distribution through the
 * regularised incomplete beta function (Numerical Recipes' continued fraction), no sampling.
 */

export interface Spread {
  readonly mean: number;
  /** Sample standard deviation (n − 1); 0 for one value. */
  readonly std: number;
  readonly n: number;
  readonly values: readonly number[];
}

export function spread(values: readonly number[]): Spread {
  const n = values.length;
  if (n === 0) return { mean: Number.NaN, std: Number.NaN, n, values: [] };
  const mean = values.reduce((s, x) => s + x, 0) / n;
  const variance = n > 1 ? values.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, std: Math.sqrt(variance), n, values: [...values] };
}

/** A paired t-test of a − b (pairs by index): mean difference, its 95 % interval, t and the two-sided p. */
export interface PairedTest {
  readonly method: 'paired t-test';
  readonly n: number;
  readonly meanDifference: number;
  readonly stdDifference: number;
  /** The 95 % confidence interval of the mean difference; null with fewer than two pairs. */
  readonly ci95: readonly [number, number] | null;
  readonly t: number | null;
  readonly degreesOfFreedom: number;
  /** Two-sided p-value; null with fewer than two pairs. */
  readonly p: number | null;
}

export function pairedTTest(a: readonly number[], b: readonly number[]): PairedTest {
  if (a.length !== b.length) {
    throw new RangeError(`pairedTTest: expected as many values in b as in a (${a.length}), got ${b.length}`);
  }
  const differences = a.map((x, i) => x - b[i]);
  const { mean, std, n } = spread(differences);
  const df = n - 1;
  if (n < 2) {
    return {
      method: 'paired t-test',
      n,
      meanDifference: mean,
      stdDifference: std,
      ci95: null,
      t: null,
      degreesOfFreedom: df,
      p: null,
    };
  }
  const se = std / Math.sqrt(n);
  if (se === 0) {
    // Every pair differs by the same amount: no spread to test against.
    const t = mean === 0 ? 0 : Math.sign(mean) * Number.POSITIVE_INFINITY;
    return {
      method: 'paired t-test',
      n,
      meanDifference: mean,
      stdDifference: 0,
      ci95: [mean, mean],
      t,
      degreesOfFreedom: df,
      p: mean === 0 ? 1 : 0,
    };
  }
  const t = mean / se;
  const q = studentTQuantile(0.975, df);
  return {
    method: 'paired t-test',
    n,
    meanDifference: mean,
    stdDifference: std,
    ci95: [mean - q * se, mean + q * se],
    t,
    degreesOfFreedom: df,
    p: 2 * (1 - studentTCdf(Math.abs(t), df)),
  };
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`studentTCdf: expected df > 0, got ${df}`);
  if (t === Number.POSITIVE_INFINITY) return 1;
  if (t === Number.NEGATIVE_INFINITY) return 0;
  const tail = 0.5 * regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** The t with P(T ≤ t) = p (bisection on the distribution function; exact to ~1e-12). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`studentTQuantile: expected 0 < p < 1, got ${p}`);
  let lo = -1;
  let hi = 1;
  while (studentTCdf(lo, df) > p) lo *= 2;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-13 * Math.max(1, Math.abs(lo)); i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** I_x(a, b), the regularised incomplete beta function. */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  // The continued fraction converges fast for x < (a + 1)/(a + b + 2); use the symmetry otherwise.
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(x, a, b)) / a;
  return 1 - (front * betaContinuedFraction(1 - x, b, a)) / b;
}

function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 500; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return h;
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: ~1e-15 relative). */
export function logGamma(x: number): number {
  const g = 7;
  const coefficients = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let sum = coefficients[0];
  for (let i = 1; i < g + 2; i++) sum += coefficients[i] / (z + i);
  const t = z + g + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** The k-th largest of |values| (k from 1) and the median of |values|, over the finite ones. */
export function magnitudeStatistics(
  values: Float64Array,
  ks: readonly number[],
): { top: number[]; median: number; count: number } {
  const magnitudes = new Float64Array(values.length);
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) magnitudes[n++] = Math.abs(v);
  }
  const sorted = magnitudes.subarray(0, n).sort();
  const median = n === 0 ? Number.NaN : n % 2 === 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  return { top: ks.map((k) => (k <= n ? sorted[n - k] : Number.NaN)), median, count: n };
}
