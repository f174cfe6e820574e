/**
 * Number formatting for the report. The Markdown is generated from the experiments' JSON and does no
 * arithmetic of its own: every number it prints is a value of the JSON, formatted here (a test checks
 * that each number in REPORT.md is one of the JSON's).
 */
import type { PairedTest, Spread } from './stats.js';

export function fixed(x: number | null | undefined, digits: number): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : 'n/a';
}

/** A signed difference with a true minus sign: +0.012, −0.034. */
export function signed(x: number | null | undefined, digits: number): string {
  if (typeof x !== 'number' || !Number.isFinite(x)) return 'n/a';
  const text = Math.abs(x).toFixed(digits);
  return x < 0 && Number(text) !== 0 ? `−${text}` : `+${text}`;
}

export function meanStd(s: Spread, digits: number): string {
  return s.n > 1 ? `${fixed(s.mean, digits)} ± ${fixed(s.std, digits)}` : fixed(s.mean, digits);
}

export function count(n: number): string {
  return n.toLocaleString('en-US');
}

export function pValue(p: number | null): string {
  if (p === null) return 'n/a';
  return p < 0.001 ? '< 0.001' : p.toFixed(3);
}

export function interval(test: PairedTest, digits: number): string {
  return test.ci95 ? `[${signed(test.ci95[0], digits)}, ${signed(test.ci95[1], digits)}]` : 'n/a';
}

/**
 * What a paired difference (a − b) says, in words chosen by the numbers: a difference whose 95 %
 * interval excludes 0 is called one, anything else is reported as no significant difference.
 */
export function verdict(test: PairedTest, better: 'lower' | 'higher', a: string, b: string): string {
  if (test.p === null || test.ci95 === null) return `one seed only: no test of ${a} against ${b}`;
  const [lo, hi] = test.ci95;
  if (lo <= 0 && hi >= 0) return `no significant difference between ${a} and ${b} (the interval includes 0)`;
  const aBetter = better === 'lower' ? hi < 0 : lo > 0;
  return aBetter
    ? `${a} is better than ${b} (the interval excludes 0)`
    : `${a} is worse than ${b} (the interval excludes 0)`;
}
