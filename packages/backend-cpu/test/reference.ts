/**
 * Naive float64 reference implementations of the kernels, written straight from the contract's
 * formulas (full score rows, two-pass softmax), to check the optimised float32 kernels against.
 */
import { createRandom } from '@diff-transformer/core';
import type { EngineName } from '@diff-transformer/backend-cpu';
import { expect } from 'vitest';

/**
 * The engines every test run has: Node 20 validates relaxed SIMD only behind a flag (it is tested in
 * a child process, see engines.test.ts).
 */
export const ENGINES: EngineName[] = ['wasm-simd128', 'typescript'];

export function randomArray(size: number, seed: number, std = 1): Float32Array {
  const random = createRandom(seed);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = std * random.normal();
  return out;
}

export function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Asserts |actual − expected| ≤ atol + rtol·|expected| elementwise, reporting the worst element. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-5, rtol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const excess = Math.abs(actual[i] - expected[i]) - (atol + rtol * Math.abs(expected[i]));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    expect.fail(
      `element ${worst}: got ${actual[worst]}, expected ${expected[worst]} (tolerance ${atol} + ${rtol}·|expected|)`,
    );
  }
}

export function matmulReference(
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
  transposeA: boolean,
  transposeB: boolean,
): Float64Array {
  const [ar, ac] = aShape.slice(-2);
  const [br, bc] = bShape.slice(-2);
  const m = transposeA ? ac : ar;
  const k = transposeA ? ar : ac;
  const n = transposeB ? br : bc;
  const batches = product(aShape.slice(0, -2));
  const bShared = bShape.length === 2;
  const out = new Float64Array(batches * m * n);
  for (let batch = 0; batch < batches; batch++) {
    const ao = batch * m * k;
    const bo = bShared ? 0 : batch * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          const x = transposeA ? a[ao + p * m + i] : a[ao + i * k + p];
          const y = transposeB ? b[bo + j * k + p] : b[bo + p * n + j];
          s += x * y;
        }
        out[batch * m * n + i * n + j] = s;
      }
    }
  }
  return out;
}

export interface MaskOptions {
  causal: boolean;
  keyOffset: number;
  keyLength: number;
  scale: number;
}

/** softmax over the visible keys of one query row, from full scores (two passes, float64). */
function probabilities(scores: number[]): number[] {
  const max = Math.max(...scores);
  const e = scores.map((s) => Math.exp(s - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

function visible(t: number, mask: MaskOptions): number {
  return mask.causal ? Math.min(mask.keyLength, mask.keyOffset + t + 1) : mask.keyLength;
}

function dot(x: ArrayLike<number>, xo: number, y: ArrayLike<number>, yo: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[xo + i] * y[yo + i];
  return s;
}

export function diffAttentionReference(
  q: ArrayLike<number>,
  qShape: readonly number[],
  k: ArrayLike<number>,
  kShape: readonly number[],
  v: ArrayLike<number>,
  vShape: readonly number[],
  lambda: ArrayLike<number>,
  lambdaShape: readonly number[],
  norm: { weight: ArrayLike<number> | null; eps: number; outputScale: number } | null,
  mask: MaskOptions,
): Float64Array {
  const [B, T, twoH, dk] = qShape;
  const H = twoH / 2;
  const [, S, kHeads] = kShape;
  const [, , Hkv, dv] = vShape;
  const out = new Float64Array(B * T * H * dv);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) {
        const g = Math.floor((h * Hkv) / H);
        const n = visible(t, mask);
        const maps = [0, 1].map((m) => {
          const kHead = kHeads === Hkv ? g : 2 * g + m;
          const qo = ((b * T + t) * twoH + 2 * h + m) * dk;
          const scores: number[] = [];
          for (let s = 0; s < n; s++) scores.push(mask.scale * dot(q, qo, k, ((b * S + s) * kHeads + kHead) * dk, dk));
          return probabilities(scores);
        });
        const lam = lambdaShape.length === 3 ? lambda[(b * T + t) * H + h] : lambda[h];
        const row = new Float64Array(dv);
        for (let c = 0; c < dv; c++) {
          let x = 0;
          for (let s = 0; s < n; s++) x += (maps[0][s] - lam * maps[1][s]) * v[((b * S + s) * Hkv + g) * dv + c];
          row[c] = x;
        }
        if (norm) {
          const ms = row.reduce((a, x) => a + x * x, 0) / dv;
          const r = 1 / Math.sqrt(ms + norm.eps);
          for (let c = 0; c < dv; c++) row[c] = row[c] * r * (norm.weight ? norm.weight[c] : 1) * norm.outputScale;
        }
        out.set(row, ((b * T + t) * H + h) * dv);
      }
    }
  }
  return out;
}

export function attentionReference(
  q: ArrayLike<number>,
  qShape: readonly number[],
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  vShape: readonly number[],
  mask: MaskOptions,
): Float64Array {
  const [B, T, H, dk] = qShape;
  const [, S, Hkv, dv] = vShape;
  const out = new Float64Array(B * T * H * dv);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) {
        const g = Math.floor((h * Hkv) / H);
        const n = visible(t, mask);
        const scores: number[] = [];
        for (let s = 0; s < n; s++) {
          scores.push(mask.scale * dot(q, ((b * T + t) * H + h) * dk, k, ((b * S + s) * Hkv + g) * dk, dk));
        }
        const p = probabilities(scores);
        for (let c = 0; c < dv; c++) {
          let x = 0;
          for (let s = 0; s < n; s++) x += p[s] * v[((b * S + s) * Hkv + g) * dv + c];
          out[((b * T + t) * H + h) * dv + c] = x;
        }
      }
    }
  }
  return out;
}

export function rotaryReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  cos: ArrayLike<number>,
  sin: ArrayLike<number>,
  half: number,
  layout: 'interleaved' | 'half',
  positionOffset: number,
): Float64Array {
  const [B, T, H, d] = shape;
  const out = Float64Array.from(x);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) {
        const base = ((b * T + t) * H + h) * d;
        for (let j = 0; j < half; j++) {
          const [i0, i1] = layout === 'interleaved' ? [2 * j, 2 * j + 1] : [j, j + half];
          const c = cos[(positionOffset + t) * half + j];
          const s = sin[(positionOffset + t) * half + j];
          const a = x[base + i0];
          const z = x[base + i1];
          out[base + i0] = a * c - z * s;
          out[base + i1] = z * c + a * s;
        }
      }
    }
  }
  return out;
}
