/**
 * swiglu, add and sigmoid, including inputs of ±90 and ±100 where a formula like e^x / (1 + e^x)
 * overflows float32 to ∞/∞ = NaN.
 */
import type { Random, Tensor } from '@diff-transformer/core';
import { ops, tidy } from '@diff-transformer/core';
import * as reference from '@diff-transformer/reference';
import type { RefTensor } from '@diff-transformer/reference';
import { elementCount } from '@diff-transformer/reference';
import type { CaseKernel } from '../tolerances.js';
import type { ConformanceCase } from '../types.js';
import { defineCase } from './harness.js';
import { normal, uniform } from './inputs.js';

type Draw = (random: Random, n: number) => Float32Array;

interface BinarySpec {
  readonly label: string;
  readonly shape: readonly number[];
  readonly first: Draw;
  readonly second: Draw;
}

const standard: Draw = (random, n) => normal(random, n);

function binaryCase(
  kernel: CaseKernel,
  spec: BinarySpec,
  op: (a: Tensor, b: Tensor) => Tensor,
  expected: (a: RefTensor, b: RefTensor) => RefTensor,
): ConformanceCase {
  return defineCase(`${kernel}/${spec.label}`, kernel, async (ws, random) => {
    const n = elementCount(spec.shape);
    const a = await ws.floats(spec.first(random, n), spec.shape);
    const b = await ws.floats(spec.second(random, n), spec.shape);
    const out = ws.own(tidy(() => op(a.tensor, b.tensor)));
    return [{ label: 'output', actual: await ws.read(out), expected: expected(a.ref, b.ref) }];
  });
}

const SWIGLU: readonly BinarySpec[] = [
  { label: 'gate, up [7, 33]', shape: [7, 33], first: standard, second: standard },
  { label: 'gate, up [1, 129]', shape: [1, 129], first: standard, second: standard },
  { label: 'gate in ±90 [2, 64]', shape: [2, 64], first: (r, n) => uniform(r, n, -90, 90), second: standard },
];

const ADD: readonly BinarySpec[] = [
  { label: 'a, b [7, 33]', shape: [7, 33], first: standard, second: standard },
  { label: 'a, b [1]', shape: [1], first: standard, second: standard },
  {
    label: 'a of 1e3 plus b of 1e-3 [2, 3, 129]',
    shape: [2, 3, 129],
    first: (r, n) => normal(r, n, 1e3),
    second: (r, n) => normal(r, n, 1e-3),
  },
];

interface UnarySpec {
  readonly label: string;
  readonly shape: readonly number[];
  readonly draw: Draw;
}

const SIGMOID: readonly UnarySpec[] = [
  { label: 'x [33]', shape: [33], draw: standard },
  { label: 'x [7, 129] of std 4', shape: [7, 129], draw: (r, n) => normal(r, n, 4) },
  { label: 'x in ±100 [2, 64]', shape: [2, 64], draw: (r, n) => uniform(r, n, -100, 100) },
];

function sigmoidCase(spec: UnarySpec): ConformanceCase {
  return defineCase(`sigmoid/${spec.label}`, 'sigmoid', async (ws, random) => {
    const x = await ws.floats(spec.draw(random, elementCount(spec.shape)), spec.shape);
    const out = ws.own(tidy(() => ops.sigmoid(x.tensor)));
    return [{ label: 'output', actual: await ws.read(out), expected: reference.sigmoid(x.ref) }];
  });
}

export function elementwiseCases(): ConformanceCase[] {
  return [
    ...SWIGLU.map((spec) => binaryCase('swiglu', spec, ops.swiglu, reference.swiglu)),
    ...ADD.map((spec) => binaryCase('add', spec, ops.add, reference.add)),
    ...SIGMOID.map(sigmoidCase),
  ];
}
