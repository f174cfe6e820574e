/**
 * Kernels with one classic bug each, built on a correct kernel table (the naive float64 one, or the
 * float32 double that stores float16/bfloat16). Each must make exactly the cases that can see that bug
 * fail, in every dtype.
 */
import type { KernelName, Kernels, TensorView } from '@diff-transformer/core';
import { TRAINING_KERNEL_NAMES } from '@diff-transformer/core';

/** A bug: the kernels it replaces, built on the correct ones. */
export type Mutation = (base: Kernels) => Partial<Kernels>;

const floats = (t: TensorView) => t.storage as Float32Array;
const withData = (t: TensorView, data: Float32Array, shape = t.shape): TensorView => ({
  storage: data,
  shape,
  dtype: t.dtype,
});

/**
 * k or v [B, S, G·per, w] expanded to [B, S, heads·per, w] where query head h reads group h mod G:
 * torch's repeat (tile) used where repeat_interleave was meant — the classic GQA mistake.
 */
function tileHeads(t: TensorView, heads: number, per: number): TensorView {
  const [batch, keys, slots, width] = t.shape;
  const groups = slots / per;
  const out = new Float32Array(batch * keys * heads * per * width);
  for (let row = 0; row < batch * keys; row++) {
    for (let h = 0; h < heads; h++) {
      const from = (row * slots + (h % groups) * per) * width;
      out.set(floats(t).subarray(from, from + per * width), (row * heads + h) * per * width);
    }
  }
  return withData(t, out, [batch, keys, heads * per, width]);
}

export const flippedLambda: Mutation = (base) => ({
  diffAttention: (q, k, v, lambda, weight, attrs, out) =>
    base.diffAttention(
      q,
      k,
      v,
      withData(
        lambda,
        floats(lambda).map((x) => -x),
      ),
      weight,
      attrs,
      out,
    ),
});

export const tiledGqa: Mutation = (base) => ({
  attention: (q, k, v, attrs, out) =>
    base.attention(q, tileHeads(k, q.shape[2], 1), tileHeads(v, q.shape[2], 1), attrs, out),
  diffAttention: (q, k, v, lambda, weight, attrs, out) => {
    const heads = q.shape[2] / 2;
    const perMap = k.shape[2] === 2 * v.shape[2];
    return base.diffAttention(
      q,
      tileHeads(k, heads, perMap ? 2 : 1),
      tileHeads(v, heads, 1),
      lambda,
      weight,
      attrs,
      out,
    );
  },
});

/** Uses 1/√dk whatever scale it is given. */
export const fixedScale: Mutation = (base) => ({
  attention: (q, k, v, attrs, out) => base.attention(q, k, v, { ...attrs, scale: 1 / Math.sqrt(q.shape[3]) }, out),
});

/** Reads every row of k and v, not just [0, keyLength). */
export const ignoresKeyLength: Mutation = (base) => ({
  attention: (q, k, v, attrs, out) => base.attention(q, k, v, { ...attrs, keyLength: k.shape[1] }, out),
  diffAttention: (q, k, v, lambda, weight, attrs, out) =>
    base.diffAttention(q, k, v, lambda, weight, { ...attrs, keyLength: k.shape[1] }, out),
});

/** Places queries at 0…T−1 instead of keyOffset…: a decode step sees only the first key. */
export const ignoresKeyOffset: Mutation = (base) => ({
  attention: (q, k, v, attrs, out) => base.attention(q, k, v, { ...attrs, keyOffset: 0 }, out),
});

/** Treats the subln weight as all ones. */
export const ignoresNormWeight: Mutation = (base) => ({
  diffAttention: (q, k, v, lambda, _weight, attrs, out) => base.diffAttention(q, k, v, lambda, null, attrs, out),
});

/** One wrong output element: the last one is off by 1. */
export const oneWrongElement: Mutation = (base) => ({
  matmul: (a, b, attrs, out) => {
    const result = base.matmul(a, b, attrs, out) as Float32Array;
    result[result.length - 1] += 1;
    return result;
  },
});

/** A NaN in the first output element. */
export const nanOutput: Mutation = (base) => ({
  softmax: (x, attrs, out) => {
    const result = base.softmax(x, attrs, out) as Float32Array;
    result[0] = NaN;
    return result;
  },
});

/** e^x / Σe^x without subtracting the maximum: e^1e4 overflows (even in float64). */
export const unstableSoftmax: Mutation = () => ({
  softmax: (x, attrs, out) => {
    const width = x.shape[x.shape.length - 1];
    const exps = floats(x).map((value) => Math.exp(value / attrs.temperature));
    const result = new Float32Array(exps.length);
    for (let r = 0; r < exps.length / width; r++) {
      const row = exps.subarray(r * width, (r + 1) * width);
      const total = row.reduce((s, e) => s + e, 0);
      row.forEach((e, j) => {
        result[r * width + j] = e / total;
      });
    }
    void out;
    return result;
  },
});

/** diffAttentionBackward drops dλ: the gradient of λ (and of everything λ is made of) is zero. */
export const droppedLambdaGradient: Mutation = (base) => ({
  diffAttentionBackward: (...args) => {
    const g = base.diffAttentionBackward(...args);
    (g.dLambda as Float32Array).fill(0);
    return g;
  },
});

/**
 * dOut with every head but the first of each GQA group zeroed: the backward then sees only that head.
 * `heads` is the number of query heads (q's half-heads / 2 for diffAttention).
 */
function firstHeadOfGroup(dOut: TensorView, heads: number, kvHeads: number): TensorView {
  const width = dOut.shape[3];
  const group = heads / kvHeads;
  const masked = floats(dOut).map((x, i) => ((Math.floor(i / width) % heads) % group === 0 ? x : 0));
  return withData(dOut, masked);
}

/**
 * dk and dv not summed over the heads of a GQA group: only the group's first head contributes (dq, dλ and
 * the norm weight's gradient stay right).
 */
export const ungroupedGqaGradients: Mutation = (base) => ({
  attentionBackward: (q, k, v, output, statistics, dOut, attrs, out) => {
    const right = base.attentionBackward(q, k, v, output, statistics, dOut, attrs, out);
    const masked = firstHeadOfGroup(dOut, q.shape[2], v.shape[2]);
    const first = base.attentionBackward(q, k, v, output, statistics, masked, attrs, out);
    return { dq: right.dq, dk: first.dk, dv: first.dv };
  },
  diffAttentionBackward: (q, k, v, lambda, weight, statistics, dOut, attrs, out) => {
    const right = base.diffAttentionBackward(q, k, v, lambda, weight, statistics, dOut, attrs, out);
    const masked = firstHeadOfGroup(dOut, q.shape[2] / 2, v.shape[2]);
    const first = base.diffAttentionBackward(q, k, v, lambda, weight, statistics, masked, attrs, out);
    return { ...right, dk: first.dk, dv: first.dv };
  },
});

/** The backward ignores the causal mask (the forward applies it): every row reads every key. */
export const causalIgnoredInBackward: Mutation = (base) => ({
  attentionBackward: (q, k, v, output, statistics, dOut, attrs, out) =>
    base.attentionBackward(q, k, v, output, statistics, dOut, { ...attrs, causal: false }, out),
  diffAttentionBackward: (q, k, v, lambda, weight, statistics, dOut, attrs, out) =>
    base.diffAttentionBackward(q, k, v, lambda, weight, statistics, dOut, { ...attrs, causal: false }, out),
});

/**
 * diffAttentionBackward without the fused norm's backward: it treats the output as un-normalised, dU =
 * dOut (the norm weight's gradient stays right).
 */
export const normGradientOmitted: Mutation = (base) => ({
  diffAttentionBackward: (q, k, v, lambda, weight, statistics, dOut, attrs, out) => {
    const right = base.diffAttentionBackward(q, k, v, lambda, weight, statistics, dOut, attrs, out);
    const plain = base.diffAttentionBackward(
      q,
      k,
      v,
      lambda,
      weight,
      statistics,
      dOut,
      { ...attrs, norm: null },
      {
        ...out,
        dNormWeight: null,
      },
    );
    return { ...plain, dNormWeight: right.dNormWeight };
  },
});

/**
 * embeddingBackward returns zeros: the lookup's gradient is lost, so an untied embedding gets none and a
 * tied one only the LM head's, one of its two.
 */
export const droppedLookupGradient: Mutation = () => ({
  embeddingBackward: (_ids, _dy, _attrs, out) => new Float32Array(out.shape.reduce((a, b) => a * b, 1)),
});

/** A kernel that throws an ordinary error. */
export const throwingAdd: Mutation = () => ({
  add: () => {
    throw new TypeError('add exploded');
  },
});

/** Every kernel with outputs: cacheWrite writes in place and returns nothing (adamw too, but its
 * parameter is its output). */
const OUTPUT_KERNELS: readonly KernelName[] = [
  'matmul',
  'embedding',
  'rmsNorm',
  'rotary',
  'swiglu',
  'add',
  'sigmoid',
  'diffAttention',
  'attention',
  'softmax',
  'argmax',
  'narrow',
  ...TRAINING_KERNEL_NAMES,
];

/** One call of a mutated kernel: which kernel, and the last output element before it was doubled. */
export interface DoubledCall {
  readonly kernel: KernelName;
  readonly value: number;
}

/** Doubles the last element of every output in a kernel's result (nested for the saved statistics). */
function doubleLast(kernel: KernelName, result: unknown, calls: DoubledCall[]): void {
  if (result instanceof Float32Array || result instanceof Int32Array) {
    const last = result.length - 1;
    if (last >= 0) {
      calls.push({ kernel, value: result[last] });
      result[last] *= 2;
    }
  } else if (result && typeof result === 'object') {
    for (const output of Object.values(result)) doubleLast(kernel, output, calls);
  }
}

/**
 * Every kernel with an output doubles the last element of each of its outputs (adamw: of the parameter
 * it updates), the one-element bug that an NMSE averaged over thousands of elements lets through in half
 * precision. Each call is recorded in `calls`, so that a test can tell which cases could see it (a zero,
 * or a value below the bound, doubles invisibly).
 */
export function doubledLastElement(calls: DoubledCall[]): Mutation {
  return (base) => {
    const kernels: Partial<Record<KernelName, unknown>> = {};
    for (const name of OUTPUT_KERNELS) {
      const kernel = base[name] as (...args: unknown[]) => unknown;
      kernels[name] = (...args: unknown[]) => {
        const result = kernel(...args);
        doubleLast(name, name === 'adamw' ? (args[0] as TensorView).storage : result, calls);
        return result;
      };
    }
    return kernels as Partial<Kernels>;
  };
}
