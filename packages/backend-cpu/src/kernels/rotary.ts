/**
 * rotary: rotates x [B, T, H, d] pairwise by position with tables cos, sin [P, r/2], r ≤ d. Token t
 * uses table row positionOffset + t; dimensions from r on are copied unrotated (partial rotary).
 *   interleaved: pairs (x[2j], x[2j+1])   (official Diff-Transformer code, GPT-J style)
 *   half:        pairs (x[j], x[j + r/2]) (Hugging Face Llama/DiffLlama, GPT-NeoX style)
 * Each pair (a, b) becomes (a·cos − b·sin, b·cos + a·sin).
 */
import type { OutputSpec, RotaryAttrs, TensorView } from '@diff-transformer/core';
import { floats } from '../storage.js';

export function rotary(
  x: TensorView,
  cos: TensorView,
  sin: TensorView,
  attrs: RotaryAttrs,
  _out: OutputSpec,
  y: Float32Array,
): void {
  const input = floats(x);
  const cosTable = floats(cos);
  const sinTable = floats(sin);
  const [batch, tokens, heads, width] = x.shape;
  const half = cos.shape[1];
  const interleaved = attrs.layout === 'interleaved';
  // Start from a copy: it already holds the unrotated tail [r, d) of every head.
  if (2 * half < width) y.set(input);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < tokens; t++) {
      const row = (attrs.positionOffset + t) * half;
      for (let h = 0; h < heads; h++) {
        const base = ((b * tokens + t) * heads + h) * width;
        for (let j = 0; j < half; j++) {
          const c = cosTable[row + j];
          const s = sinTable[row + j];
          const first = interleaved ? base + 2 * j : base + j;
          const second = interleaved ? first + 1 : first + half;
          const a0 = input[first];
          const a1 = input[second];
          y[first] = a0 * c - a1 * s;
          y[second] = a1 * c + a0 * s;
        }
      }
    }
  }
}
