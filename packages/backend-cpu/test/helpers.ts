/**
 * What the CPU backend's own tests share: the engines every run has, seeded inputs and an elementwise
 * closeness check. The float64 reference they compare with is the conformance suite's (`reference`
 * of @diff-transformer/conformance): one reference for every backend.
 */
import { createRandom } from '@diff-transformer/core';
import type { EngineName } from '@diff-transformer/backend-cpu';
import { expect } from 'vitest';

/**
 * The engines every test run has (the native one is built with the package): Node 20 validates relaxed
 * SIMD only behind a flag (it is tested in
 * a child process, see engines.test.ts).
 */
export const ENGINES: EngineName[] = ['native', 'wasm-simd128', 'typescript'];

export function randomArray(size: number, seed: number, std = 1): Float32Array {
  const random = createRandom(seed);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = std * random.normal();
  return out;
}

export function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Asserts |actual − expected| ≤ atol + rtol·|expected| elementwise, reporting the worst element. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-5, rtol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const excess = Math.abs(actual[i] - expected[i]) - (atol + rtol * Math.abs(expected[i]));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    expect.fail(
      `element ${worst}: got ${actual[worst]}, expected ${expected[worst]} (tolerance ${atol} + ${rtol}·|expected|)`,
    );
  }
}
