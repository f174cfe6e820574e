/** rmsNorm: with and without weight, width 1, eps 0, and inputs small enough that eps dominates. */
import { ops, tidy } from '@diff-transformer/core';
import * as reference from '@diff-transformer/reference';
import { elementCount } from '@diff-transformer/reference';
import type { ConformanceCase } from '../types.js';
import { defineCase } from './harness.js';
import { normal } from './inputs.js';

interface RmsNormSpec {
  readonly label: string;
  readonly shape: readonly number[];
  readonly weight: boolean;
  readonly eps: number;
  /** Standard deviation of x. */
  readonly scale?: number;
}

const SPECS: readonly RmsNormSpec[] = [
  { label: 'x [7, 33] with weight', shape: [7, 33], weight: true, eps: 1e-5 },
  { label: 'x [2, 3, 129] without weight', shape: [2, 3, 129], weight: false, eps: 1e-6 },
  { label: 'x [3, 1] width 1', shape: [3, 1], weight: true, eps: 1e-5 },
  { label: 'x [2, 64] eps 0', shape: [2, 64], weight: true, eps: 0 },
  // mean(x²) ≈ 1e-8 ≪ eps: eps must sit inside the square root, and x / (rms + eps) fails here.
  { label: 'x [4, 128] of 1e-4 where eps dominates', shape: [4, 128], weight: true, eps: 1e-5, scale: 1e-4 },
  { label: 'x [2, 16] of 1e4', shape: [2, 16], weight: true, eps: 1e-5, scale: 1e4 },
];

function rmsNormCase(spec: RmsNormSpec): ConformanceCase {
  return defineCase(`rmsNorm/${spec.label}`, 'rmsNorm', async (ws, random) => {
    const width = spec.shape[spec.shape.length - 1];
    const x = await ws.floats(normal(random, elementCount(spec.shape), spec.scale ?? 1), spec.shape);
    // Weights around 1 but not 1, so that a kernel ignoring them fails.
    const weight = spec.weight
      ? await ws.floats(
          normal(random, width, 0.3).map((w) => 1 + w),
          [width],
        )
      : null;
    const out = ws.own(tidy(() => ops.rmsNorm(x.tensor, weight?.tensor ?? null, spec.eps)));
    return [
      {
        label: 'output',
        actual: await ws.read(out),
        expected: reference.rmsNorm(x.ref, weight?.ref ?? null, { eps: spec.eps }),
      },
    ];
  });
}

export function rmsNormCases(): ConformanceCase[] {
  return SPECS.map(rmsNormCase);
}
