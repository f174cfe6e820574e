/**
 * The thresholds against backends that compute the way devices do (see float32-backend.ts): a
 * correct float32 implementation must pass every case with a wide margin, and float16/bfloat16
 * storage must pass its looser rows, the large cases included. If a threshold is tightened too far,
 * or a case is made ill-conditioned, this fails.
 */
import { describe, expect, it } from 'vitest';
import type { CaseResult } from '../src/index.js';
import { conformanceCases, runConformance } from '../src/index.js';
import { float32Backend } from './float32-backend.js';

const cases = new Map(conformanceCases().map((c) => [c.name, c]));
/** Each run is the whole suite, the large cases and the training ones included, on a JavaScript double. */
const TIMEOUT = 300_000;

/**
 * The float32 margins: the NMSE 1000 times below its row (the large cases, whose softmax sums thousands
 * of keys in order: 500), every element 20 times below its bound. The 'large scores' rows are not a
 * measurement with room but a bound derived from float32's resolution at |S| < 2^14 (four roundings of
 * the log-sum-exp, tolerances.ts); the double makes one, and must stay at a quarter of the element bound
 * and 20 times below the NMSE.
 */
function float32Margins(r: CaseResult): { nmse: number; element: number } {
  const testCase = cases.get(r.name)!;
  if (testCase.variant === 'large scores') return { nmse: 20, element: 4 };
  return { nmse: testCase.large ? 500 : 1000, element: 20 };
}

describe('calibration', () => {
  const title =
    'a float32 backend passes every NMSE 1000 (large cases: 500) times and every element bound 20 times below';
  it(
    title,
    async () => {
      const report = await runConformance(float32Backend('float32-calibration'), { large: true });
      expect(report.summary).toEqual({ pass: report.cases.length, fail: 0, unsupported: 0 });
      for (const r of report.cases) {
        const margin = float32Margins(r);
        if (r.tolerance > 0) expect(r.nmse!, r.name).toBeLessThan(r.tolerance / margin.nmse);
        else expect(r.nmse, r.name).toBe(0);
        expect(r.elementError!, r.name).toBeLessThan(1 / margin.element);
      }
    },
    TIMEOUT,
  );

  for (const dtype of ['float16', 'bfloat16'] as const) {
    const name =
      `${dtype} storage with float32 compute passes every kernel case at least 5 times below its NMSE ` +
      'and 4 times below its element bound';
    it(
      name,
      async () => {
        const report = await runConformance(float32Backend(`${dtype}-calibration`, { storage: true }), {
          dtype,
          large: true,
        });
        expect(report.summary).toEqual({ pass: report.cases.length, fail: 0, unsupported: 0 });
        for (const r of report.cases) {
          if (r.tolerance > 0) expect(r.nmse!, r.name).toBeLessThan(r.tolerance / 5);
          // The output's rounding, u·|b|, is a quarter of the half-precision rows' k·u·(1 + |b|) at k = 4.
          expect(r.elementError!, r.name).toBeLessThanOrEqual(1 / 4);
        }
      },
      TIMEOUT,
    );
  }
});
