/**
 * matmul: plain, transposed operands, batched, and a weight shared by the batch; sizes 1, 7, 33, 129.
 * The large cases (opt-in) reach what GPU kernels only do at size: tiles of 128 and more (M, N ≥ 512) in
 * every layout, a skinny tile (3 rows), and GEMV paths (1 to 4 rows against a weight, K = 1000).
 */
import { ops, tidy } from '@diff-transformer/core';
import * as reference from '@diff-transformer/reference';
import { elementCount } from '@diff-transformer/reference';
import type { ConformanceCase } from '../types.js';
import { defineCase } from './harness.js';
import { normal } from './inputs.js';

interface MatmulSpec {
  readonly m: number;
  readonly k: number;
  readonly n: number;
  readonly batch?: readonly number[];
  /** b has no batch dimensions: one weight for every batch entry. */
  readonly sharedWeight?: boolean;
  readonly transposeA?: boolean;
  readonly transposeB?: boolean;
}

const SPECS: readonly MatmulSpec[] = [
  { m: 1, k: 1, n: 1 },
  { m: 7, k: 33, n: 129 },
  { m: 129, k: 7, n: 33, transposeB: true },
  { m: 33, k: 7, n: 129, transposeA: true },
  { m: 33, k: 129, n: 7, transposeA: true, transposeB: true },
  { m: 129, k: 129, n: 129 },
  { m: 7, k: 33, n: 7, batch: [3] },
  { m: 129, k: 7, n: 33, batch: [2], transposeA: true, transposeB: true },
  { m: 33, k: 129, n: 7, batch: [2, 3], sharedWeight: true },
  // A decode step through a Linear layer: one row per batch entry against a [out, in] weight.
  { m: 1, k: 33, n: 129, batch: [4], sharedWeight: true, transposeB: true },
  { m: 1, k: 1, n: 7, batch: [5], transposeA: true },
];

const LARGE_SPECS: readonly MatmulSpec[] = [
  // Large tiles (M, N ≥ 512), with partial tiles at both edges, in every layout.
  ...[false, true].flatMap((transposeA) =>
    [false, true].map((transposeB) => ({ m: 520, k: 45, n: 530, transposeA, transposeB })),
  ),
  // A skinny tile: 3 rows of a batch against a shared weight.
  { m: 3, k: 70, n: 300, batch: [2], sharedWeight: true },
  // GEMV: decoding 1 to 4 rows through a [301, 1000] Linear weight, and through a batched weight.
  ...[1, 2, 3, 4].flatMap((rows) => [
    { m: rows, k: 1000, n: 301, batch: [2], sharedWeight: true, transposeB: true },
    { m: rows, k: 33, n: 7, batch: [3], transposeB: true },
  ]),
];

function nameOf(spec: MatmulSpec): string {
  const parts = [`M${spec.m} K${spec.k} N${spec.n}`];
  if (spec.batch) parts.push(`batch [${spec.batch.join(', ')}]${spec.sharedWeight ? ' shared weight' : ''}`);
  if (spec.transposeA) parts.push('transposeA');
  if (spec.transposeB) parts.push('transposeB');
  return `matmul/${parts.join(' ')}`;
}

function matmulCase(spec: MatmulSpec, large = false): ConformanceCase {
  const attrs = { transposeA: spec.transposeA ?? false, transposeB: spec.transposeB ?? false };
  const batch = spec.batch ?? [];
  const aShape = [...batch, ...(attrs.transposeA ? [spec.k, spec.m] : [spec.m, spec.k])];
  const bShape = [...(spec.sharedWeight ? [] : batch), ...(attrs.transposeB ? [spec.n, spec.k] : [spec.k, spec.n])];
  return defineCase(
    nameOf(spec),
    'matmul',
    async (ws, random) => {
      const a = await ws.floats(normal(random, elementCount(aShape)), aShape);
      const b = await ws.floats(normal(random, elementCount(bShape)), bShape);
      const out = ws.own(tidy(() => ops.matmul(a.tensor, b.tensor, attrs)));
      return [{ label: 'output', actual: await ws.read(out), expected: reference.matmul(a.ref, b.ref, attrs) }];
    },
    { large },
  );
}

export function matmulCases(): ConformanceCase[] {
  return [...SPECS.map((spec) => matmulCase(spec)), ...LARGE_SPECS.map((spec) => matmulCase(spec, true))];
}
