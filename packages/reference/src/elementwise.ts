import type { ScaleAttrs } from '@diff-transformer/core';
import type { RefTensor } from './tensor.js';

function map(x: RefTensor, f: (value: number, index: number) => number): RefTensor {
  return { shape: [...x.shape], data: x.data.map(f) };
}

/** 1 / (1 + e^(−x)); exact in float64 for every |x| a float32 test input can hold. */
export function sigmoid(x: RefTensor): RefTensor {
  return map(x, (v) => 1 / (1 + Math.exp(-v)));
}

/** silu(gate) · up = gate · σ(gate) · up. */
export function swiglu(gate: RefTensor, up: RefTensor): RefTensor {
  return map(gate, (g, i) => (g / (1 + Math.exp(-g))) * up.data[i]);
}

/** a + b, same shapes. */
export function add(a: RefTensor, b: RefTensor): RefTensor {
  return map(a, (v, i) => v + b.data[i]);
}

/** eˣ. */
export function exp(x: RefTensor): RefTensor {
  return map(x, (v) => Math.exp(v));
}

/** a · b, same shapes. */
export function mul(a: RefTensor, b: RefTensor): RefTensor {
  return map(a, (v, i) => v * b.data[i]);
}

/** alpha · x + beta. */
export function scale(x: RefTensor, attrs: ScaleAttrs): RefTensor {
  return map(x, (v) => attrs.alpha * v + attrs.beta);
}

/** Σ x² → [1]. */
export function sumSquares(x: RefTensor): RefTensor {
  let sum = 0;
  for (const v of x.data) sum += v * v;
  return { shape: [1], data: Float64Array.of(sum) };
}

/**
 * The gradients of silu(g)·u: d/dg [g·σ(g)] = σ(g) + g·σ(g)·(1 − σ(g)), d/du = g·σ(g).
 */
export function swigluBackward(gate: RefTensor, up: RefTensor, dy: RefTensor): { dGate: RefTensor; dUp: RefTensor } {
  const sigma = (g: number) => 1 / (1 + Math.exp(-g));
  return {
    dGate: map(gate, (g, i) => {
      const s = sigma(g);
      return dy.data[i] * up.data[i] * (s + g * s * (1 - s));
    }),
    dUp: map(gate, (g, i) => dy.data[i] * g * sigma(g)),
  };
}

/** The gradients of a · b: (dy · b, dy · a). */
export function mulBackward(a: RefTensor, b: RefTensor, dy: RefTensor): { dA: RefTensor; dB: RefTensor } {
  return { dA: map(dy, (d, i) => d * b.data[i]), dB: map(dy, (d, i) => d * a.data[i]) };
}

/** The gradient of eˣ: dy · eˣ. */
export function expBackward(x: RefTensor, dy: RefTensor): RefTensor {
  return map(dy, (d, i) => d * Math.exp(x.data[i]));
}

/** The gradient of σ(x): dy · σ(x) · (1 − σ(x)). */
export function sigmoidBackward(x: RefTensor, dy: RefTensor): RefTensor {
  return map(dy, (d, i) => {
    const s = 1 / (1 + Math.exp(-x.data[i]));
    return d * s * (1 - s);
  });
}

/** The gradient of alpha · x + beta: alpha · dy. */
export function scaleBackward(dy: RefTensor, attrs: ScaleAttrs): RefTensor {
  return map(dy, (d) => attrs.alpha * d);
}
