/**
 * Kernels with one classic bug each, built on the naive test backend. Each must make exactly the
 * cases that can see that bug fail.
 */
import type { Kernels, TensorView } from '@diff-transformer/core';
import { naiveKernels } from './naive-backend.js';

const base = naiveKernels();
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

export const flippedLambda: Partial<Kernels> = {
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
};

export const tiledGqa: Partial<Kernels> = {
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
};

/** Uses 1/√dk whatever scale it is given. */
export const fixedScale: Partial<Kernels> = {
  attention: (q, k, v, attrs, out) => base.attention(q, k, v, { ...attrs, scale: 1 / Math.sqrt(q.shape[3]) }, out),
};

/** Reads every row of k and v, not just [0, keyLength). */
export const ignoresKeyLength: Partial<Kernels> = {
  attention: (q, k, v, attrs, out) => base.attention(q, k, v, { ...attrs, keyLength: k.shape[1] }, out),
  diffAttention: (q, k, v, lambda, weight, attrs, out) =>
    base.diffAttention(q, k, v, lambda, weight, { ...attrs, keyLength: k.shape[1] }, out),
};

/** Places queries at 0…T−1 instead of keyOffset…: a decode step sees only the first key. */
export const ignoresKeyOffset: Partial<Kernels> = {
  attention: (q, k, v, attrs, out) => base.attention(q, k, v, { ...attrs, keyOffset: 0 }, out),
};

/** Treats the subln weight as all ones. */
export const ignoresNormWeight: Partial<Kernels> = {
  diffAttention: (q, k, v, lambda, _weight, attrs, out) => base.diffAttention(q, k, v, lambda, null, attrs, out),
};

/** One wrong output element: the last one is off by 1. */
export const oneWrongElement: Partial<Kernels> = {
  matmul: (a, b, attrs, out) => {
    const result = base.matmul(a, b, attrs, out) as Float32Array;
    result[result.length - 1] += 1;
    return result;
  },
};

/** A NaN in the first output element. */
export const nanOutput: Partial<Kernels> = {
  softmax: (x, attrs, out) => {
    const result = base.softmax(x, attrs, out) as Float32Array;
    result[0] = NaN;
    return result;
  },
};

/** e^x / Σe^x without subtracting the maximum: e^1e4 overflows (even in float64). */
export const unstableSoftmax: Partial<Kernels> = {
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
};

/** A kernel that throws an ordinary error. */
export const throwingAdd: Partial<Kernels> = {
  add: () => {
    throw new TypeError('add exploded');
  },
};
