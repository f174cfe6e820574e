/**
 * Every rule of core's gradient table, op by op (ggml's test-backend-ops MODE_GRAD). For a random
 * projection r of the op's output, L = Σ r ⊙ op(x) is differentiated by core's tape on the backend
 * (valueAndGrads with dValue = r: the op's rule and the kernels it calls) and compared, for every input
 * that has a gradient, with the float64 reference's backward of the op and with central differences of
 * the reference's forward in float64. The op's output on the tape is checked too: attention runs another
 * kernel there. So a broken rule fails its own op's cases, not only the whole-model `gradients` cases.
 */
import type { DiffAttentionAttrs, DifferentiableOp, Random, Tensor } from '@diff-transformer/core';
import { ops, valueAndGrads } from '@diff-transformer/core';
import type { RefTensor } from '@diff-transformer/reference';
import * as reference from '@diff-transformer/reference';
import { elementCount } from '@diff-transformer/reference';
import type { ConformanceCase } from '../types.js';
import type { Check } from './harness.js';
import { defineCase } from './harness.js';
import { normal, uniform } from './inputs.js';

interface InputSpec {
  readonly name: string;
  readonly shape: readonly number[];
  /** The values; default N(0, 1). */
  readonly values?: (random: Random, n: number) => ArrayLike<number>;
  /** Uploaded as int32 (ids, targets). */
  readonly int?: boolean;
  /** A constant of the op (rotary tables, ids, targets): not watched, no gradient. */
  readonly constant?: boolean;
}

type Named<T> = Readonly<Record<string, T>>;

interface OpGradientSpec {
  readonly op: DifferentiableOp;
  readonly label: string;
  readonly inputs: readonly InputSpec[];
  /** The op through core's ops, on the uploaded inputs. */
  readonly run: (x: Named<Tensor>) => Tensor;
  /** The op in float64: what the finite differences differentiate. */
  readonly forward: (x: Named<RefTensor>) => RefTensor;
  /** The reference's backward: ∂(Σ dy ⊙ forward(x))/∂input for every input that is not a constant. */
  readonly backward: (x: Named<RefTensor>, dy: RefTensor) => Named<RefTensor>;
}

const input = (name: string, shape: readonly number[], extra: Partial<InputSpec> = {}): InputSpec => ({
  name,
  shape,
  ...extra,
});
const ids = (name: string, values: readonly number[], shape: readonly number[]): InputSpec =>
  input(name, shape, { values: () => values, int: true, constant: true });
const around = (centre: number, spread: number) => (random: Random, n: number) =>
  uniform(random, n, centre - spread, centre + spread);

function elementwiseSpecs(): OpGradientSpec[] {
  const shape = [3, 7];
  return [
    {
      op: 'add',
      label: 'a, b [3, 7]',
      inputs: [input('a', shape), input('b', shape)],
      run: ({ a, b }) => ops.add(a, b),
      forward: ({ a, b }) => reference.add(a, b),
      backward: (_, dy) => ({ a: dy, b: dy }),
    },
    {
      op: 'mul',
      label: 'a, b [3, 7]',
      inputs: [input('a', shape), input('b', shape)],
      run: ({ a, b }) => ops.mul(a, b),
      forward: ({ a, b }) => reference.mul(a, b),
      backward: ({ a, b }, dy) => {
        const g = reference.mulBackward(a, b, dy);
        return { a: g.dA, b: g.dB };
      },
    },
    {
      op: 'exp',
      label: 'x in [−2, 2] [3, 7]',
      inputs: [input('x', shape, { values: around(0, 2) })],
      run: ({ x }) => ops.exp(x),
      forward: ({ x }) => reference.exp(x),
      backward: ({ x }, dy) => ({ x: reference.expBackward(x, dy) }),
    },
    {
      op: 'sigmoid',
      label: 'x of std 3 [3, 7]',
      inputs: [input('x', shape, { values: (random, n) => normal(random, n, 3) })],
      run: ({ x }) => ops.sigmoid(x),
      forward: ({ x }) => reference.sigmoid(x),
      backward: ({ x }, dy) => ({ x: reference.sigmoidBackward(x, dy) }),
    },
    {
      op: 'scale',
      label: '−0.7·x + 0.8 [3, 7]',
      inputs: [input('x', shape)],
      run: ({ x }) => ops.scale(x, -0.7, 0.8),
      forward: ({ x }) => reference.scale(x, { alpha: -0.7, beta: 0.8 }),
      backward: (_, dy) => ({ x: reference.scaleBackward(dy, { alpha: -0.7, beta: 0.8 }) }),
    },
    {
      op: 'swiglu',
      label: 'gate of std 2, up [3, 7]',
      inputs: [input('gate', shape, { values: (random, n) => normal(random, n, 2) }), input('up', shape)],
      run: ({ gate, up }) => ops.swiglu(gate, up),
      forward: ({ gate, up }) => reference.swiglu(gate, up),
      backward: ({ gate, up }, dy) => {
        const g = reference.swigluBackward(gate, up, dy);
        return { gate: g.dGate, up: g.dUp };
      },
    },
  ];
}

/** Every branch of the rule: each layout, a batch, and a weight shared by the batch (as linear has it). */
function matmulSpecs(): OpGradientSpec[] {
  const layouts = [
    { label: 'a [5, 7] · b [7, 4]', a: [5, 7], b: [7, 4], transposeA: false, transposeB: false },
    { label: 'aᵀ: a [7, 5] · b [7, 4]', a: [7, 5], b: [7, 4], transposeA: true, transposeB: false },
    { label: 'bᵀ: a [5, 7] · b [4, 7]', a: [5, 7], b: [4, 7], transposeA: false, transposeB: true },
    { label: 'aᵀ bᵀ: a [7, 5] · b [4, 7]', a: [7, 5], b: [4, 7], transposeA: true, transposeB: true },
    { label: 'batched a [2, 5, 7] · b [2, 7, 4]', a: [2, 5, 7], b: [2, 7, 4], transposeA: false, transposeB: false },
    { label: 'shared weight a [2, 5, 7] · b [4, 7]ᵀ', a: [2, 5, 7], b: [4, 7], transposeA: false, transposeB: true },
  ];
  return layouts.map(({ label, a: aShape, b: bShape, ...attrs }) => ({
    op: 'matmul',
    label,
    inputs: [input('a', aShape), input('b', bShape)],
    run: ({ a, b }) => ops.matmul(a, b, attrs),
    forward: ({ a, b }) => reference.matmul(a, b, attrs),
    backward: ({ a, b }, dy) => {
      const g = reference.matmulBackward(a, b, dy, attrs);
      return { a: g.dA, b: g.dB };
    },
  }));
}

function viewSpecs(): OpGradientSpec[] {
  const narrows = [
    { label: 'axis 1 [1, 3) of [3, 5, 4]', shape: [3, 5, 4], axis: 1, start: 1, length: 3 },
    { label: 'axis −1 [2, 4) of [3, 5, 4]', shape: [3, 5, 4], axis: 2, start: 2, length: 2 },
  ];
  return [
    {
      op: 'reshape',
      label: '[2, 3, 4] → [6, −1]',
      inputs: [input('x', [2, 3, 4])],
      run: ({ x }) => ops.reshape(x, [6, -1]),
      forward: ({ x }) => ({ shape: [6, 4], data: x.data }),
      backward: ({ x }, dy) => ({ x: { shape: x.shape, data: dy.data } }),
    },
    ...narrows.map(
      ({ label, shape, axis, start, length }): OpGradientSpec => ({
        op: 'narrow',
        label,
        inputs: [input('x', shape)],
        run: ({ x }) => ops.narrow(x, axis === 2 ? -1 : axis, start, length),
        forward: ({ x }) => reference.narrow(x, { axis, start, length }),
        backward: ({ x }, dy) => ({ x: reference.narrowBackward(dy, x.shape, { axis, start, length }) }),
      }),
    ),
  ];
}

function layerSpecs(): OpGradientSpec[] {
  const vocab = 11;
  const rmsNorms = [
    { label: 'x [3, 8] with weight', weight: true },
    { label: 'x [3, 8] without weight', weight: false },
  ];
  return [
    {
      op: 'embedding',
      label: 'table [11, 5], ids [2, 4] with repeats',
      inputs: [input('table', [vocab, 5]), ids('ids', [1, 3, 1, 7, 0, 10, 3, 3], [2, 4])],
      run: ({ table, ids: i }) => ops.embedding(table, i),
      forward: ({ table, ids: i }) => reference.embedding(table, i),
      backward: ({ ids: i }, dy) => ({ table: reference.embeddingBackward(i, dy, vocab) }),
    },
    ...rmsNorms.map(
      ({ label, weight }): OpGradientSpec => ({
        op: 'rmsNorm',
        label,
        inputs: [input('x', [3, 8]), ...(weight ? [input('weight', [8], { values: around(1, 0.3) })] : [])],
        run: (x) => ops.rmsNorm(x.x, x.weight ?? null, 1e-5),
        forward: (x) => reference.rmsNorm(x.x, x.weight ?? null, { eps: 1e-5 }),
        backward: (x, dy) => {
          const g = reference.rmsNormBackward(x.x, x.weight ?? null, dy, { eps: 1e-5 });
          return { x: g.dx, ...(weight ? { weight: g.dWeight! } : {}) };
        },
      }),
    ),
  ];
}

/** x [1, 3, 2, 8] against tables of 6 positions: both layouts, a partial rotation, a position offset. */
function rotarySpecs(): OpGradientSpec[] {
  const specs = [
    { label: 'interleaved', layout: 'interleaved', rotaryDim: 8, positionOffset: 0 },
    { label: 'half', layout: 'half', rotaryDim: 8, positionOffset: 0 },
    { label: 'half, partial r = 4 of d = 8', layout: 'half', rotaryDim: 4, positionOffset: 0 },
    { label: 'interleaved, position offset 3', layout: 'interleaved', rotaryDim: 8, positionOffset: 3 },
  ] as const;
  return specs.map(({ label, layout, rotaryDim, positionOffset }) => {
    const tables = reference.rotaryTables(rotaryDim, 10000, 6);
    const attrs = { layout, positionOffset };
    return {
      op: 'rotary',
      label: `x [1, 3, 2, 8] ${label}`,
      inputs: [
        input('x', [1, 3, 2, 8]),
        input('cos', tables.cos.shape, { values: () => tables.cos.data, constant: true }),
        input('sin', tables.sin.shape, { values: () => tables.sin.data, constant: true }),
      ],
      run: ({ x, cos, sin }) => ops.rotary(x, cos, sin, attrs),
      forward: ({ x, cos, sin }) => reference.rotary(x, cos, sin, attrs),
      backward: ({ cos, sin }, dy) => ({ x: reference.rotaryBackward(dy, cos, sin, attrs) }),
    };
  });
}

/** MHA, GQA, non-causal, dv ≠ dk, and two queries against a longer cache (key offset and length). */
function attentionSpecs(): OpGradientSpec[] {
  const specs = [
    { label: 'MHA T5 H2 d8', t: 5, s: 5, h: 2, hkv: 2, dv: 8, causal: true, keyOffset: 0, keyLength: 5 },
    { label: 'GQA H4 Hkv2 T5', t: 5, s: 5, h: 4, hkv: 2, dv: 8, causal: true, keyOffset: 0, keyLength: 5 },
    { label: 'non-causal, dv 12', t: 4, s: 6, h: 2, hkv: 1, dv: 12, causal: false, keyOffset: 0, keyLength: 6 },
    {
      label: 'T2 at key offset 3 of 7 keys, 5 valid',
      t: 2,
      s: 7,
      h: 2,
      hkv: 2,
      dv: 8,
      causal: true,
      keyOffset: 3,
      keyLength: 5,
    },
  ];
  return specs.map(({ label, t, s, h, hkv, dv, ...mask }) => {
    const attrs = { ...mask, scale: 1 / Math.sqrt(8) };
    return {
      op: 'attention',
      label,
      inputs: [input('q', [1, t, h, 8]), input('k', [1, s, hkv, 8]), input('v', [1, s, hkv, dv])],
      run: ({ q, k, v }) => ops.attention(q, k, v, attrs),
      forward: ({ q, k, v }) => reference.attention(q, k, v, attrs),
      backward: ({ q, k, v }, dy) => {
        const g = reference.attentionBackward(q, k, v, dy, attrs);
        return { q: g.dq, k: g.dk, v: g.dv };
      },
    };
  });
}

/**
 * DIFF V1 (per-map keys, λ per head) with the fused subln and its weight, the norm without weight, no
 * norm, GQA and non-causal; DIFF V2 (shared keys, λ per token). λ and the norm weight get gradients too.
 */
function diffAttentionSpecs(): OpGradientSpec[] {
  const specs = [
    { label: 'V1 H2 T5, subln with weight', t: 5, h: 2, hkv: 2, perMapKeys: true, norm: 'weight', causal: true },
    { label: 'V1 H2 T5, subln without weight', t: 5, h: 2, hkv: 2, perMapKeys: true, norm: 'plain', causal: true },
    { label: 'V1 H2 T5, no subln', t: 5, h: 2, hkv: 2, perMapKeys: true, norm: 'none', causal: true },
    { label: 'V1 GQA H2 Hkv1, non-causal', t: 4, h: 2, hkv: 1, perMapKeys: true, norm: 'weight', causal: false },
    { label: 'V2 H2 Hkv1 T5, λ per token', t: 5, h: 2, hkv: 1, perMapKeys: false, norm: 'none', causal: true },
  ] as const;
  return specs.map(({ label, t, h, hkv, perMapKeys, norm, causal }) => {
    const dk = 8;
    const dv = 16;
    const attrs: DiffAttentionAttrs = {
      causal,
      keyOffset: 0,
      keyLength: t,
      scale: 1 / Math.sqrt(dk),
      norm: norm === 'none' ? null : { eps: 1e-5, outputScale: 0.2 },
    };
    return {
      op: 'diffAttention',
      label,
      inputs: [
        input('q', [1, t, 2 * h, dk]),
        input('k', [1, t, perMapKeys ? 2 * hkv : hkv, dk]),
        input('v', [1, t, hkv, dv]),
        input('lambda', perMapKeys ? [h] : [1, t, h], { values: around(0.5, 0.3) }),
        ...(norm === 'weight' ? [input('normWeight', [dv], { values: around(1, 0.3) })] : []),
      ],
      run: (x) =>
        ops.diffAttention(x.q, x.k, x.v, x.lambda, {
          ...attrs,
          norm: attrs.norm && { ...attrs.norm, weight: x.normWeight ?? null },
        }),
      forward: (x) => reference.diffAttention(x.q, x.k, x.v, x.lambda, x.normWeight ?? null, attrs),
      backward: (x, dy) => {
        const g = reference.diffAttentionBackward(x.q, x.k, x.v, x.lambda, x.normWeight ?? null, dy, attrs);
        return {
          q: g.dq,
          k: g.dk,
          v: g.dv,
          lambda: g.dLambda,
          ...(norm === 'weight' ? { normWeight: g.dNormWeight! } : {}),
        };
      },
    };
  });
}

/** The loss [1] times a random r (not 1: the rule must scale dLogits), with an ignored target. */
function crossEntropySpecs(): OpGradientSpec[] {
  const specs = [
    { label: 'logits [4, 7], one target ignored, scale 1/3', ignoreIndex: -100, scale: 1 / 3 },
    { label: 'logits [4, 7], ignoreIndex 6, scale 1', ignoreIndex: 6, scale: 1 },
  ];
  return specs.map(({ label, ...attrs }) => ({
    op: 'crossEntropy',
    label,
    inputs: [
      input('logits', [4, 7], { values: (random, n) => normal(random, n, 2) }),
      ids('targets', [2, -100, 6, 0], [4]),
    ],
    run: ({ logits, targets }) => ops.crossEntropy(logits, targets, attrs),
    forward: ({ logits, targets }) => reference.crossEntropy(logits, targets, attrs).loss,
    backward: ({ logits, targets }, dy) => {
      const { dLogits } = reference.crossEntropy(logits, targets, attrs);
      return { logits: { shape: dLogits.shape, data: dLogits.data.map((d) => d * dy.data[0]) } };
    },
  }));
}

function opGradientCase(spec: OpGradientSpec): ConformanceCase {
  return defineCase(
    `opGradient/${spec.op} ${spec.label}`,
    'opGradient',
    async (ws, random) => {
      const tensors: Record<string, Tensor> = {};
      const refs: Record<string, RefTensor> = {};
      for (const { name, shape, values, int } of spec.inputs) {
        const data = values ? values(random, elementCount(shape)) : normal(random, elementCount(shape));
        const uploaded = int ? ws.ints(data, shape) : await ws.floats(data, shape);
        tensors[name] = uploaded.tensor;
        refs[name] = uploaded.ref;
      }
      const y = spec.forward(refs);
      const dy = await ws.floats(normal(random, y.data.length), y.shape);
      const watched = new Map(spec.inputs.filter((i) => !i.constant).map((i) => [i.name, tensors[i.name]]));
      const { value, grads } = valueAndGrads(() => spec.run(tensors), watched, {
        dValue: dy.tensor,
        gradients: ws.gradients,
      });
      ws.own(value);
      for (const g of grads.values()) ws.own(g);
      const expected = spec.backward(refs, dy.ref);
      const checks: Check[] = [{ label: 'y (on the tape)', actual: await ws.read(value), expected: y }];
      for (const [name, g] of grads) {
        const actual = await ws.read(g);
        const numeric = reference.centralDifferences(refs[name], () =>
          reference.projection(spec.forward(refs), dy.ref),
        );
        checks.push(
          { label: `d${name} (reference backward)`, actual, expected: expected[name] },
          { label: `d${name} (finite differences)`, actual, expected: numeric },
        );
      }
      return checks;
    },
    { float32Only: true },
  );
}

/** The per-op gradient cases, by op; a test checks that every op with a rule in core's table has some. */
export function opGradientCases(): ConformanceCase[] {
  return [
    ...elementwiseSpecs(),
    ...matmulSpecs(),
    ...viewSpecs(),
    ...layerSpecs(),
    ...rotarySpecs(),
    ...attentionSpecs(),
    ...diffAttentionSpecs(),
    ...crossEntropySpecs(),
  ].map(opGradientCase);
}
