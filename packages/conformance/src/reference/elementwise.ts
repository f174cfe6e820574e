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
