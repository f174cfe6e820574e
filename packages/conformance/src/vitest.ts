/**
 * The suite as vitest tests, for a backend package's own test file:
 *
 *   import '@diff-transformer/backend-cpu';
 *   import { describeConformance } from '@diff-transformer/conformance/vitest';
 *   describeConformance('cpu');
 *
 * One `it` per case, named after it. A failing case fails its test with the case's message; an
 * unsupported one is skipped with the reason, so it shows in the report without failing the run (with
 * `strict: true` it fails, for a backend that claims to implement everything).
 * This is the only file that imports vitest: the CLI runs the same cases through runConformance.
 */
import type { Backend } from '@diff-transformer/core';
import { initializedBackend } from '@diff-transformer/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCase, selectCases } from './runner.js';
import type { FloatDType } from './types.js';

export interface DescribeConformanceOptions {
  /** Registers only the cases whose name matches (a RegExp, or a substring). */
  readonly filter?: RegExp | string;
  /** Storage dtype of the kernel cases' float inputs (default float32). */
  readonly dtype?: FloatDType;
  /** Per-case timeout in milliseconds (default 60 000: the model cases are slow on a naive backend). */
  readonly timeout?: number;
  /** Fail an unsupported case instead of skipping it: the backend claims full coverage (default false). */
  readonly strict?: boolean;
  /** Also register the large cases (ConformanceCase.large; default false). */
  readonly large?: boolean;
}

export function describeConformance(backendName: string, options: DescribeConformanceOptions = {}): void {
  const dtype = options.dtype && options.dtype !== 'float32' ? ` (${options.dtype})` : '';
  describe(`conformance: ${backendName}${dtype}`, () => {
    let backend: Backend;
    beforeAll(async () => {
      backend = await initializedBackend(backendName);
    });
    for (const testCase of selectCases(options.filter, { large: options.large })) {
      it(
        testCase.name,
        async (context) => {
          const result = await runCase(testCase, backend, { dtype: options.dtype, strict: options.strict });
          if (result.status === 'unsupported') context.skip(`unsupported on '${backendName}': ${result.message ?? ''}`);
          const measured =
            result.nmse === null
              ? 'not measured'
              : `NMSE ${result.nmse}, max abs error ${result.maxAbsError}, element error ${result.elementError}`;
          const limits = `tolerance ${result.tolerance}, atol ${result.atol}, rtol ${result.rtol}`;
          expect(result.status, `${result.message ?? ''} (${measured}; ${limits})`).toBe('pass');
        },
        options.timeout ?? 60_000,
      );
    }
  });
}
