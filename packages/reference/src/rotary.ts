import type { RotaryAttrs } from '@diff-transformer/core';
import type { RefTensor } from './tensor.js';
import { refZeros } from './tensor.js';

/**
 * Rotary tables cos, sin [positions, dim/2] in float64: row p, column j holds cos/sin(p·θ^(−2j/dim)).
 * Not rounded to float32: the reference model uses the exact angles (core's default precision).
 */
export function rotaryTables(dim: number, theta: number, positions: number): { cos: RefTensor; sin: RefTensor } {
  const half = dim / 2;
  const cos = refZeros([positions, half]);
  const sin = refZeros([positions, half]);
  for (let p = 0; p < positions; p++) {
    for (let j = 0; j < half; j++) {
      const angle = p * theta ** ((-2 * j) / dim);
      cos.data[p * half + j] = Math.cos(angle);
      sin.data[p * half + j] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/**
 * Rotates x [B, T, H, d] with tables [P, r/2] (RotaryAttrs). Token t uses table row positionOffset + t;
 * only the first r dimensions rotate, the rest are copied. Pair j is (2j, 2j+1) when interleaved and
 * (j, j + r/2) in the half layout; (a, b) becomes (a·cos − b·sin, b·cos + a·sin).
 */
export function rotary(x: RefTensor, cos: RefTensor, sin: RefTensor, attrs: RotaryAttrs): RefTensor {
  const [batch, tokens, heads, width] = x.shape;
  const half = cos.shape[1];
  const out: RefTensor = { shape: [...x.shape], data: Float64Array.from(x.data) };
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < tokens; t++) {
      const row = attrs.positionOffset + t;
      for (let h = 0; h < heads; h++) {
        const base = ((b * tokens + t) * heads + h) * width;
        for (let j = 0; j < half; j++) {
          const first = attrs.layout === 'interleaved' ? 2 * j : j;
          const second = attrs.layout === 'interleaved' ? 2 * j + 1 : j + half;
          const a = x.data[base + first];
          const c = x.data[base + second];
          const cosine = cos.data[row * half + j];
          const sine = sin.data[row * half + j];
          out.data[base + first] = a * cosine - c * sine;
          out.data[base + second] = c * cosine + a * sine;
        }
      }
    }
  }
  return out;
}

/**
 * The gradient of rotary for dy: each pair's rotation transposed, (da, db) = (dy₁·cos + dy₂·sin,
 * −dy₁·sin + dy₂·cos); the copied dimensions pass dy through.
 */
export function rotaryBackward(dy: RefTensor, cos: RefTensor, sin: RefTensor, attrs: RotaryAttrs): RefTensor {
  const [batch, tokens, heads, width] = dy.shape;
  const half = cos.shape[1];
  const out: RefTensor = { shape: [...dy.shape], data: Float64Array.from(dy.data) };
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < tokens; t++) {
      const row = attrs.positionOffset + t;
      for (let h = 0; h < heads; h++) {
        const base = ((b * tokens + t) * heads + h) * width;
        for (let j = 0; j < half; j++) {
          const first = attrs.layout === 'interleaved' ? 2 * j : j;
          const second = attrs.layout === 'interleaved' ? 2 * j + 1 : j + half;
          const [d1, d2] = [dy.data[base + first], dy.data[base + second]];
          const [cosine, sine] = [cos.data[row * half + j], sin.data[row * half + j]];
          out.data[base + first] = d1 * cosine + d2 * sine;
          out.data[base + second] = -d1 * sine + d2 * cosine;
        }
      }
    }
  }
  return out;
}
