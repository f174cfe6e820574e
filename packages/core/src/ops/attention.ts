import type { AttentionMaskAttrs, DiffAttentionAttrs } from '../backend/kernels.js';
import { ArgumentError, ShapeError, formatShape } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertFloat, assertSameDType, kernelFor, wrapOutput } from './dispatch.js';

export interface AttentionOptions {
  /** Default true (decoder-only). */
  causal?: boolean;
  /** Absolute position of query 0 (tokens already in the KV cache). Default 0. */
  keyOffset?: number;
  /** Valid keys in k and v. Default: all of them (k.shape[1]). */
  keyLength?: number;
  /** Default 1/√dk. */
  scale?: number;
}

export interface DiffAttentionOptions extends AttentionOptions {
  /** Fuses the per-head RMSNorm (weight [dv] or null for none) and the (1 − λinit) output scale. */
  norm?: { weight: Tensor | null; eps: number; outputScale: number } | null;
}

/**
 * Fused differential attention (see DiffAttentionAttrs in the kernel contract):
 *   q [B, T, 2H, dk], k [B, S, 2Hkv | Hkv, dk], v [B, S, Hkv, dv], lambda [H] | [B, T, H] → [B, T, H, dv]
 */
export function diffAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lambda: Tensor,
  options: DiffAttentionOptions = {},
): Tensor {
  const normWeight = options.norm?.weight ?? null;
  const { backend, impl } = kernelFor('diffAttention', [q, k, v, lambda, normWeight]);
  assertFloat('diffAttention q', q);
  assertSameDType('diffAttention k', q, k);
  assertSameDType('diffAttention v', q, v);
  assertFloat('diffAttention lambda', lambda);
  if (q.rank !== 4) throw new ShapeError('diffAttention q', '[B, T, 2H, dk]', q.shape);
  if (v.rank !== 4) throw new ShapeError('diffAttention v', '[B, S, Hkv, dv]', v.shape);
  const [b, t, halfHeads, dk] = q.shape;
  const [vb, s, hkv, dv] = v.shape;
  if (halfHeads % 2 !== 0) {
    throw new ShapeError('diffAttention q', '[B, T, 2H, dk] with an even number of half-heads', q.shape);
  }
  const h = halfHeads / 2;
  if (vb !== b) throw new ShapeError('diffAttention v', `[${b}, S, Hkv, dv]`, v.shape, `q is ${formatShape(q.shape)}`);
  if (hkv < 1 || h % hkv !== 0) {
    throw new ShapeError('diffAttention v', `[B, S, Hkv, dv] with H = ${h} a multiple of Hkv`, v.shape);
  }
  if (
    k.rank !== 4 ||
    k.shape[0] !== b ||
    k.shape[1] !== s ||
    k.shape[3] !== dk ||
    (k.shape[2] !== 2 * hkv && k.shape[2] !== hkv)
  ) {
    throw new ShapeError('diffAttention k', `[${b}, ${s}, ${2 * hkv} | ${hkv}, ${dk}]`, k.shape);
  }
  const perToken = lambda.rank === 3;
  if (
    !(lambda.rank === 1 && lambda.shape[0] === h) &&
    !(perToken && lambda.shape[0] === b && lambda.shape[1] === t && lambda.shape[2] === h)
  ) {
    throw new ShapeError('diffAttention lambda', `[${h}] or [${b}, ${t}, ${h}]`, lambda.shape);
  }
  if (normWeight) {
    assertFloat('diffAttention norm weight', normWeight);
    if (normWeight.rank !== 1 || normWeight.shape[0] !== dv) {
      throw new ShapeError('diffAttention norm weight', `[${dv}]`, normWeight.shape);
    }
  }
  const mask = maskAttrs('diffAttention', options, t, s, dk);
  const norm = options.norm ? { eps: options.norm.eps, outputScale: options.norm.outputScale } : null;
  if (norm && (!(norm.eps >= 0) || !Number.isFinite(norm.outputScale))) {
    throw new ArgumentError(
      'diffAttention norm',
      'eps ≥ 0 and a finite outputScale',
      `eps ${norm.eps}, outputScale ${norm.outputScale}`,
    );
  }
  const attrs: DiffAttentionAttrs = { ...mask, norm };
  const out = { shape: [b, t, h, dv], dtype: q.dtype };
  return wrapOutput(backend, impl(q, k, v, lambda, normWeight, attrs, out), out);
}

/** Standard attention (baseline Transformer): q [B, T, H, dk], k [B, S, Hkv, dk], v [B, S, Hkv, dv]. */
export function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  const { backend, impl } = kernelFor('attention', [q, k, v]);
  assertFloat('attention q', q);
  assertSameDType('attention k', q, k);
  assertSameDType('attention v', q, v);
  if (q.rank !== 4) throw new ShapeError('attention q', '[B, T, H, dk]', q.shape);
  if (v.rank !== 4) throw new ShapeError('attention v', '[B, S, Hkv, dv]', v.shape);
  const [b, t, h, dk] = q.shape;
  const [vb, s, hkv, dv] = v.shape;
  if (vb !== b) throw new ShapeError('attention v', `[${b}, S, Hkv, dv]`, v.shape, `q is ${formatShape(q.shape)}`);
  if (hkv < 1 || h % hkv !== 0)
    throw new ShapeError('attention v', `[B, S, Hkv, dv] with H = ${h} a multiple of Hkv`, v.shape);
  if (k.rank !== 4 || k.shape[0] !== b || k.shape[1] !== s || k.shape[2] !== hkv || k.shape[3] !== dk) {
    throw new ShapeError('attention k', `[${b}, ${s}, ${hkv}, ${dk}]`, k.shape);
  }
  const attrs = maskAttrs('attention', options, t, s, dk);
  const out = { shape: [b, t, h, dv], dtype: q.dtype };
  return wrapOutput(backend, impl(q, k, v, attrs, out), out);
}

function maskAttrs(kernel: string, options: AttentionOptions, t: number, s: number, dk: number): AttentionMaskAttrs {
  const causal = options.causal ?? true;
  const keyOffset = options.keyOffset ?? 0;
  const keyLength = options.keyLength ?? s;
  const scale = options.scale ?? 1 / Math.sqrt(dk);
  if (!Number.isInteger(keyOffset) || keyOffset < 0)
    throw new ArgumentError(`${kernel} keyOffset`, 'an integer ≥ 0', keyOffset);
  if (!Number.isInteger(keyLength) || keyLength < 1 || keyLength > s) {
    throw new ArgumentError(`${kernel} keyLength`, `an integer in [1, ${s}]`, keyLength);
  }
  if (causal && keyOffset + t > keyLength) {
    throw new ArgumentError(
      `${kernel} keyOffset + T`,
      `≤ keyLength (${keyLength}) so the last query sees itself`,
      `${keyOffset} + ${t}`,
    );
  }
  if (!Number.isFinite(scale)) throw new ArgumentError(`${kernel} scale`, 'a finite number', scale);
  return { causal, keyOffset, keyLength, scale };
}
