/**
 * softmax and argmax over the last dimension: T = 1, temperatures, a width of 1, and logits of ±1e4
 * that overflow e^x unless the row maximum is subtracted first; argmax ties go to the lowest index.
 */
import type { Random } from '@diff-transformer/core';
import { ops, tidy } from '@diff-transformer/core';
import * as reference from '@diff-transformer/reference';
import type { ConformanceCase } from '../types.js';
import { defineCase } from './harness.js';
import { integers, normal, quantized } from './inputs.js';

/**
 * Rows of integers near ±1e4: exact in float32, so the correct probabilities have no input round-off.
 * Row 0 is two-way tied at 1e4 ([0.5, 0.5, …]); the others spread by a few units around ±1e4 or mix both.
 */
function hugeLogits(random: Random, rows: number, width: number): Float32Array {
  const x = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < width; j++) {
      const spread = integers(random, 1, 6)[0];
      x[r * width + j] =
        r === 0
          ? j < 2
            ? 1e4
            : 1e4 - 40
          : r % 3 === 1
            ? 1e4 - spread
            : r % 3 === 2
              ? -1e4 + spread
              : [1e4, -1e4, 0][j % 3];
    }
  }
  return x;
}

interface SoftmaxSpec {
  readonly label: string;
  readonly shape: readonly number[];
  readonly temperature: number;
  readonly draw: (random: Random, n: number, shape: readonly number[]) => Float32Array;
}

const SOFTMAX: readonly SoftmaxSpec[] = [
  { label: 'x [1, 33] (T = 1)', shape: [1, 33], temperature: 1, draw: (r, n) => normal(r, n, 3) },
  { label: 'x [2, 3, 129] at temperature 0.7', shape: [2, 3, 129], temperature: 0.7, draw: (r, n) => normal(r, n, 3) },
  { label: 'x [5, 1] (width 1)', shape: [5, 1], temperature: 1, draw: (r, n) => normal(r, n) },
  { label: 'logits of ±1e4 [7, 8]', shape: [7, 8], temperature: 1, draw: (r, _n, s) => hugeLogits(r, s[0], s[1]) },
  // Temperature 0.5 doubles exactly, so the scaled logits stay exact too.
  {
    label: 'logits of ±1e4 [7, 8] at temperature 0.5',
    shape: [7, 8],
    temperature: 0.5,
    draw: (r, _n, s) => hugeLogits(r, s[0], s[1]),
  },
  {
    label: 'x [4, 97] of std 10 at temperature 2.5',
    shape: [4, 97],
    temperature: 2.5,
    draw: (r, n) => normal(r, n, 10),
  },
];

function softmaxCase(spec: SoftmaxSpec): ConformanceCase {
  return defineCase(`softmax/${spec.label}`, 'softmax', async (ws, random) => {
    const n = spec.shape.reduce((a, b) => a * b);
    const x = await ws.floats(spec.draw(random, n, spec.shape), spec.shape);
    const out = ws.own(tidy(() => ops.softmax(x.tensor, spec.temperature)));
    return [
      {
        label: 'output',
        actual: await ws.read(out),
        expected: reference.softmax(x.ref, { temperature: spec.temperature }),
      },
    ];
  });
}

interface ArgmaxSpec {
  readonly label: string;
  readonly shape: readonly number[];
  readonly draw: (random: Random, n: number) => Float32Array;
}

const ARGMAX: readonly ArgmaxSpec[] = [
  { label: 'x [7, 33]', shape: [7, 33], draw: (r, n) => normal(r, n) },
  // Four levels over 16 columns: nearly every row has a tie at its maximum.
  { label: 'ties go to the lowest index [6, 16]', shape: [6, 16], draw: (r, n) => quantized(r, n, 1, 2) },
  {
    label: 'maximum in the last column [1, 129]',
    shape: [1, 129],
    draw: (r, n) => {
      const x = normal(r, n);
      x[n - 1] = 10;
      return x;
    },
  },
  { label: 'width 1 [2, 3, 1]', shape: [2, 3, 1], draw: (r, n) => normal(r, n) },
  {
    label: 'logits near −1e4 [3, 129]',
    shape: [3, 129],
    draw: (r, n) => Float32Array.from(integers(r, n, 1000), (i) => -1e4 + i),
  },
];

function argmaxCase(spec: ArgmaxSpec): ConformanceCase {
  return defineCase(`argmax/${spec.label}`, 'argmax', async (ws, random) => {
    const x = await ws.floats(
      spec.draw(
        random,
        spec.shape.reduce((a, b) => a * b),
      ),
      spec.shape,
    );
    const out = ws.own(tidy(() => ops.argmax(x.tensor)));
    if (out.dtype !== 'int32') ws.fail(`argmax returned ${out.dtype}, not int32`);
    return [{ label: 'indices', actual: await ws.read(out), expected: reference.argmax(x.ref) }];
  });
}

export function logitsCases(): ConformanceCase[] {
  return [...SOFTMAX.map(softmaxCase), ...ARGMAX.map(argmaxCase)];
}
