/**
 * Kernels with one classic bug each, built on a correct kernel table (the naive float64 one, or the
 * float32 double that stores float16/bfloat16). Each must make exactly the cases that can see that bug
 * fail, in every dtype.
 */
import type { InferenceKernelName, KernelName, Kernels, TensorView } from '@diff-transformer/core';

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

/** A kernel that throws an ordinary error. */
export const throwingAdd: Mutation = () => ({
  add: () => {
    throw new TypeError('add exploded');
  },
});

/** Every kernel that returns a storage: cacheWrite writes in place and returns nothing. */
const OUTPUT_KERNELS: readonly InferenceKernelName[] = [
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
];

/** One call of a mutated kernel: which kernel, and the last output element before it was doubled. */
export interface DoubledCall {
  readonly kernel: KernelName;
  readonly value: number;
}

/**
 * Every kernel with an output doubles its last element, the one-element bug that an NMSE averaged over
 * thousands of elements lets through in half precision. Each call is recorded in `calls`, so that a test
 * can tell which cases could see it (a zero, or a value below the bound, doubles invisibly).
 */
export function doubledLastElement(calls: DoubledCall[]): Mutation {
  return (base) => {
    const kernels: Partial<Record<KernelName, unknown>> = {};
    for (const name of OUTPUT_KERNELS) {
      const kernel = base[name] as (...args: unknown[]) => Float32Array | Int32Array;
      kernels[name] = (...args: unknown[]) => {
        const result = kernel(...args);
        const last = result.length - 1;
        if (last >= 0) {
          calls.push({ kernel: name, value: result[last] });
          result[last] *= 2;
        }
        return result;
      };
    }
    return kernels as Partial<Kernels>;
  };
}
