/**
 * The kernels training adds besides attention: the elementwise helpers of the gradient rules (exp,
 * mul, scale), sumSquares for clipping, the backward of rmsNorm, swiglu and embedding, the fused
 * cross-entropy and the AdamW step. Each against the float64 reference, at the edges that break naive
 * code: exp of −100 and +20, rows where eps dominates, a vocabulary row of ±1e4 logits, repeated and
 * unused ids, ignored targets, an optimiser at step 1 and step 1000.
 */
import type { AdamWAttrs } from '@diff-transformer/core';
import { ops, tensor, tidy } from '@diff-transformer/core';
import * as reference from '@diff-transformer/reference';
import { elementCount } from '@diff-transformer/reference';
import type { ConformanceCase } from '../types.js';
import { defineCase } from './harness.js';
import { integers, normal, uniform } from './inputs.js';

function expCases(): ConformanceCase[] {
  const specs = [
    { label: 'x [7, 33]', shape: [7, 33], low: -4, high: 4 },
    { label: 'x in [−100, 20] [2, 129] (underflow to 0, e^20)', shape: [2, 129], low: -100, high: 20 },
    { label: 'x [1]', shape: [1], low: -1, high: 1 },
  ];
  return specs.map((spec) =>
    defineCase(`exp/${spec.label}`, 'exp', async (ws, random) => {
      // float16 ends at 65504 = e^11.09: above, e^x is ∞ however right the kernel is, so x stops at 11 there.
      const high = ws.dtype === 'float16' ? Math.min(spec.high, 11) : spec.high;
      const x = await ws.floats(uniform(random, elementCount(spec.shape), spec.low, high), spec.shape);
      const out = ws.own(tidy(() => ops.exp(x.tensor)));
      return [{ label: 'output', actual: await ws.read(out), expected: reference.exp(x.ref) }];
    }),
  );
}

function mulCases(): ConformanceCase[] {
  const specs = [
    { label: 'a, b [7, 33]', shape: [7, 33] },
    { label: 'a, b [1]', shape: [1] },
    { label: 'a, b [2, 3, 129]', shape: [2, 3, 129] },
  ];
  return specs.map((spec) =>
    defineCase(`mul/${spec.label}`, 'mul', async (ws, random) => {
      const n = elementCount(spec.shape);
      const a = await ws.floats(normal(random, n), spec.shape);
      const b = await ws.floats(normal(random, n, 3), spec.shape);
      const out = ws.own(tidy(() => ops.mul(a.tensor, b.tensor)));
      return [{ label: 'output', actual: await ws.read(out), expected: reference.mul(a.ref, b.ref) }];
    }),
  );
}

function scaleCases(): ConformanceCase[] {
  const specs = [
    { label: '−1·x [7, 33] (negation)', shape: [7, 33], alpha: -1, beta: 0 },
    { label: '0.37·x + 0.8 [2, 129] (λinit)', shape: [2, 129], alpha: 0.37, beta: 0.8 },
    { label: '−x + 1 [5] (1 − σ)', shape: [5], alpha: -1, beta: 1 },
  ];
  return specs.map((spec) =>
    defineCase(`scale/${spec.label}`, 'scale', async (ws, random) => {
      const x = await ws.floats(normal(random, elementCount(spec.shape)), spec.shape);
      const out = ws.own(tidy(() => ops.scale(x.tensor, spec.alpha, spec.beta)));
      return [{ label: 'output', actual: await ws.read(out), expected: reference.scale(x.ref, spec) }];
    }),
  );
}

function sumSquaresCases(): ConformanceCase[] {
  const specs = [
    { label: 'x [1]', shape: [1], std: 1 },
    { label: 'x [7, 33]', shape: [7, 33], std: 1 },
    // Many elements: a running float32 sum in one order loses digits; blocks or pairs keep them.
    { label: 'x [257, 1031] of std 1e-3', shape: [257, 1031], std: 1e-3 },
  ];
  return specs.map((spec) =>
    defineCase(`sumSquares/${spec.label}`, 'sumSquares', async (ws, random) => {
      const x = await ws.floats(normal(random, elementCount(spec.shape), spec.std), spec.shape);
      const out = ws.own(tidy(() => ops.sumSquares(x.tensor)));
      return [{ label: 'output', actual: await ws.read(out), expected: reference.sumSquares(x.ref) }];
    }),
  );
}

function swigluBackwardCases(): ConformanceCase[] {
  const specs = [
    { label: 'gate, up [7, 33]', shape: [7, 33], gate: 1 },
    { label: 'gate of std 8 [2, 129]', shape: [2, 129], gate: 8 },
    { label: 'gate in ±90 [1, 64] (σ saturates)', shape: [1, 64], gate: 0 },
  ];
  return specs.map((spec) =>
    defineCase(`swigluBackward/${spec.label}`, 'swigluBackward', async (ws, random) => {
      const n = elementCount(spec.shape);
      const gate = await ws.floats(spec.gate ? normal(random, n, spec.gate) : uniform(random, n, -90, 90), spec.shape);
      const up = await ws.floats(normal(random, n), spec.shape);
      const dy = await ws.floats(normal(random, n), spec.shape);
      const g = tidy(() => ops.swigluBackward(gate.tensor, up.tensor, dy.tensor));
      ws.own(g.dGate);
      ws.own(g.dUp);
      const expected = reference.swigluBackward(gate.ref, up.ref, dy.ref);
      return [
        { label: 'dGate', actual: await ws.read(g.dGate), expected: expected.dGate },
        { label: 'dUp', actual: await ws.read(g.dUp), expected: expected.dUp },
      ];
    }),
  );
}

function rmsNormBackwardCases(): ConformanceCase[] {
  const specs = [
    { label: 'x [7, 33] with weight', shape: [7, 33], weight: true, eps: 1e-5, std: 1 },
    { label: 'x [2, 3, 129] without weight', shape: [2, 3, 129], weight: false, eps: 1e-6, std: 1 },
    // Width 1 with x² ≫ eps is sign(x)·w: its gradient is eps-sized, all cancellation in float32. At x² ~ eps
    // (x of 3e-3 against eps 1e-5) the gradient is of order 1/|x| and float32 carries it.
    { label: 'x [3, 1] width 1, x² ~ eps', shape: [3, 1], weight: true, eps: 1e-5, std: 3e-3 },
    { label: 'x [4, 128] of 1e-4 where eps dominates', shape: [4, 128], weight: true, eps: 1e-5, std: 1e-4 },
    // dWeight sums over 515 rows: the reduction must be exact enough and the same on every thread count.
    { label: 'x [515, 64] (dWeight over many rows)', shape: [515, 64], weight: true, eps: 1e-5, std: 1 },
  ];
  return specs.map((spec) =>
    defineCase(`rmsNormBackward/${spec.label}`, 'rmsNormBackward', async (ws, random) => {
      const width = spec.shape[spec.shape.length - 1];
      const n = elementCount(spec.shape);
      const x = await ws.floats(normal(random, n, spec.std), spec.shape);
      const weight = spec.weight
        ? await ws.floats(
            normal(random, width, 0.3).map((w) => 1 + w),
            [width],
          )
        : null;
      const dy = await ws.floats(normal(random, n), spec.shape);
      const g = tidy(() => ops.rmsNormBackward(x.tensor, weight?.tensor ?? null, dy.tensor, spec.eps));
      ws.own(g.dx);
      if (g.dWeight) ws.own(g.dWeight);
      const expected = reference.rmsNormBackward(x.ref, weight?.ref ?? null, dy.ref, { eps: spec.eps });
      const checks = [{ label: 'dx', actual: await ws.read(g.dx), expected: expected.dx }];
      if (expected.dWeight) {
        if (!g.dWeight) ws.fail('dWeight: missing where there is a weight');
        else checks.push({ label: 'dWeight', actual: await ws.read(g.dWeight), expected: expected.dWeight });
      } else if (g.dWeight) ws.fail('dWeight: given where there is no weight');
      return checks;
    }),
  );
}

function embeddingBackwardCases(): ConformanceCase[] {
  const specs = [
    { vocab: 129, width: 33, ids: [2, 7] },
    { vocab: 7, width: 1, ids: [13] },
    // Many repeats of few ids: the scatter-add must sum them all, in a fixed order.
    { vocab: 5, width: 64, ids: [4, 257] },
  ];
  return specs.map((spec) =>
    defineCase(
      `embeddingBackward/vocab ${spec.vocab} width ${spec.width} ids [${spec.ids.join(', ')}]`,
      'embeddingBackward',
      async (ws, random) => {
        const count = elementCount(spec.ids);
        const values = integers(random, count, spec.vocab);
        values[0] = spec.vocab - 1;
        if (count > 2) values[1] = 0;
        const ids = ws.ints(values, spec.ids);
        const dy = await ws.floats(normal(random, count * spec.width), [...spec.ids, spec.width]);
        const out = ws.own(tidy(() => ops.embeddingBackward(ids.tensor, dy.tensor, spec.vocab)));
        return [
          {
            label: 'dTable',
            actual: await ws.read(out),
            expected: reference.embeddingBackward(ids.ref, dy.ref, spec.vocab),
          },
        ];
      },
    ),
  );
}

function crossEntropyCases(): ConformanceCase[] {
  const specs = [
    { label: 'N 7 V 33, mean', rows: 7, vocab: 33, std: 2, ignored: [] as number[] },
    { label: 'N 5 V 1031 with 2 ignored targets', rows: 5, vocab: 1031, std: 3, ignored: [1, 4] },
    { label: 'N 3 V 1', rows: 3, vocab: 1, std: 1, ignored: [] },
    // exp(1e4) overflows: the row maximum must be subtracted, in the loss and in the gradient.
    { label: 'logits of ±1e4, N 4 V 65', rows: 4, vocab: 65, std: 1e4, ignored: [] },
  ];
  return specs.map((spec) =>
    defineCase(`crossEntropy/${spec.label}`, 'crossEntropy', async (ws, random) => {
      const logits = await ws.floats(normal(random, spec.rows * spec.vocab, spec.std), [spec.rows, spec.vocab]);
      const targetValues = integers(random, spec.rows, spec.vocab);
      targetValues[0] = spec.vocab - 1;
      for (const i of spec.ignored) targetValues[i] = -100;
      const targets = ws.ints(targetValues, [spec.rows]);
      const attrs = { ignoreIndex: -100, scale: 1 / (spec.rows - spec.ignored.length) };
      const r = tidy(() => ops.crossEntropyWithGradient(logits.tensor, targets.tensor, attrs));
      ws.own(r.loss);
      ws.own(r.dLogits);
      const expected = reference.crossEntropy(logits.ref, targets.ref, attrs);
      return [
        { label: 'loss', actual: await ws.read(r.loss), expected: expected.loss },
        { label: 'dLogits', actual: await ws.read(r.dLogits), expected: expected.dLogits },
      ];
    }),
  );
}

function adamwCases(): ConformanceCase[] {
  const base = { learningRate: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradScale: 1 };
  const specs: Array<{ label: string; shape: number[]; attrs: AdamWAttrs }> = [
    { label: 'step 1 [7, 33]', shape: [7, 33], attrs: { ...base, step: 1 } },
    {
      label: 'step 1000, clipped gradient (gradScale 0.25) [2, 129]',
      shape: [2, 129],
      attrs: { ...base, step: 1000, gradScale: 0.25 },
    },
    {
      label: 'no weight decay, lr 0.1, step 3 [65]',
      shape: [65],
      attrs: { ...base, weightDecay: 0, learningRate: 0.1, step: 3 },
    },
  ];
  return specs.map((spec) =>
    defineCase(`adamw/${spec.label}`, 'adamw', async (ws, random) => {
      const n = elementCount(spec.shape);
      const param = await ws.floats(normal(random, n), spec.shape);
      const grad = await ws.floats(normal(random, n, 0.1), spec.shape);
      // Moments as they are after some steps: m of either sign, v ≥ 0; always float32.
      const mValues = normal(random, n, 0.01);
      const vValues = normal(random, n, 0.01).map((x) => x * x);
      const float32 = (values: Float32Array) =>
        ws.own(tensor(values, spec.shape, { backend: ws.backend, dtype: 'float32' }));
      const [m, v] = [float32(mValues), float32(vValues)];
      ops.adamw(param.tensor, grad.tensor, m, v, spec.attrs);
      const expected = reference.adamw(
        param.ref,
        grad.ref,
        reference.refTensor(mValues, spec.shape),
        reference.refTensor(vValues, spec.shape),
        spec.attrs,
      );
      return [
        { label: 'param', actual: await ws.read(param.tensor), expected: expected.param },
        { label: 'm', actual: await ws.read(m), expected: expected.m },
        { label: 'v', actual: await ws.read(v), expected: expected.v },
      ];
    }),
  );
}

export function trainingCases(): ConformanceCase[] {
  return [
    ...expCases(),
    ...mulCases(),
    ...scaleCases(),
    ...sumSquaresCases(),
    ...swigluBackwardCases(),
    ...rmsNormBackwardCases(),
    ...embeddingBackwardCases(),
    ...crossEntropyCases(),
    ...adamwCases(),
  ];
}
