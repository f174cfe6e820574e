import type { AttentionMaskAttrs, DiffAttentionAttrs, OutputSpec } from '../backend/kernels.js';
import { ArgumentError, ShapeError, formatShape } from '../errors.js';
import { shapesEqual } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertDType, assertFloat, assertSameDType, wrapOutput } from './dispatch.js';
import { type ForwardCall, runOp, runWithoutGradient } from './run.js';

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

/** What an attention forward saves for its backward (see AttentionStatisticsSpec in the contract). */
export interface AttentionStatisticsTensors {
  /** [B, T, H, maps] float32. */
  readonly logSumExp: Tensor;
  /** [B, T, H, 2, dv] float32 for diffAttention; null for attention. */
  readonly mapOutputs: Tensor | null;
}

interface DiffAttentionCall {
  readonly normWeight: Tensor | null;
  readonly attrs: DiffAttentionAttrs;
  readonly out: OutputSpec;
  readonly heads: number;
}

/** Checks every operand of diffAttention and derives the kernel's attributes and output. */
function diffAttentionCall(
  op: string,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lambda: Tensor,
  options: DiffAttentionOptions,
): DiffAttentionCall {
  const normWeight = options.norm?.weight ?? null;
  assertFloat(`${op} q`, q);
  assertSameDType(`${op} k`, q, k);
  assertSameDType(`${op} v`, q, v);
  assertFloat(`${op} lambda`, lambda);
  if (q.rank !== 4) throw new ShapeError(`${op} q`, '[B, T, 2H, dk]', q.shape);
  if (v.rank !== 4) throw new ShapeError(`${op} v`, '[B, S, Hkv, dv]', v.shape);
  const [b, t, halfHeads, dk] = q.shape;
  const [vb, s, hkv, dv] = v.shape;
  if (halfHeads % 2 !== 0) {
    throw new ShapeError(`${op} q`, '[B, T, 2H, dk] with an even number of half-heads', q.shape);
  }
  const h = halfHeads / 2;
  if (vb !== b) throw new ShapeError(`${op} v`, `[${b}, S, Hkv, dv]`, v.shape, `q is ${formatShape(q.shape)}`);
  if (hkv < 1 || h % hkv !== 0) {
    throw new ShapeError(`${op} v`, `[B, S, Hkv, dv] with H = ${h} a multiple of Hkv`, v.shape);
  }
  if (
    k.rank !== 4 ||
    k.shape[0] !== b ||
    k.shape[1] !== s ||
    k.shape[3] !== dk ||
    (k.shape[2] !== 2 * hkv && k.shape[2] !== hkv)
  ) {
    throw new ShapeError(`${op} k`, `[${b}, ${s}, ${2 * hkv} | ${hkv}, ${dk}]`, k.shape);
  }
  const perToken = lambda.rank === 3;
  if (
    !(lambda.rank === 1 && lambda.shape[0] === h) &&
    !(perToken && lambda.shape[0] === b && lambda.shape[1] === t && lambda.shape[2] === h)
  ) {
    throw new ShapeError(`${op} lambda`, `[${h}] or [${b}, ${t}, ${h}]`, lambda.shape);
  }
  if (normWeight) {
    assertFloat(`${op} norm weight`, normWeight);
    if (normWeight.rank !== 1 || normWeight.shape[0] !== dv) {
      throw new ShapeError(`${op} norm weight`, `[${dv}]`, normWeight.shape);
    }
  }
  const mask = maskAttrs(op, options, t, s, dk);
  const norm = options.norm ? { eps: options.norm.eps, outputScale: options.norm.outputScale } : null;
  if (norm && (!(norm.eps >= 0) || !Number.isFinite(norm.outputScale))) {
    throw new ArgumentError(
      `${op} norm`,
      'eps ≥ 0 and a finite outputScale',
      `eps ${norm.eps}, outputScale ${norm.outputScale}`,
    );
  }
  return { normWeight, attrs: { ...mask, norm }, out: { shape: [b, t, h, dv], dtype: q.dtype }, heads: h };
}

/**
 * Fused differential attention (see DiffAttentionAttrs in the kernel contract):
 *   q [B, T, 2H, dk], k [B, S, 2Hkv | Hkv, dk], v [B, S, Hkv, dv], lambda [H] | [B, T, H] → [B, T, H, dv]
 * On a recording tape it runs diffAttentionWithStatistics' kernel, whose statistics its rule reads.
 */
export function diffAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lambda: Tensor,
  options: DiffAttentionOptions = {},
): Tensor {
  const normWeight = options.norm?.weight ?? null;
  const call = diffAttentionCall('diffAttention', q, k, v, lambda, options);
  return runOp('diffAttention', [q, k, v, lambda, normWeight], call.attrs, ({ kernel, recording }) => {
    if (!recording) {
      const { backend, impl } = kernel('diffAttention');
      return { y: wrapOutput(backend, impl(q, k, v, lambda, normWeight, call.attrs, call.out), call.out) };
    }
    const { output, statistics } = diffAttentionStatistics(kernel, q, k, v, lambda, normWeight, call);
    return { y: output, statistics: { ...statistics } };
  });
}

/** diffAttention, also returning what its backward needs (see AttentionStatisticsSpec). */
export function diffAttentionWithStatistics(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lambda: Tensor,
  options: DiffAttentionOptions = {},
): { output: Tensor; statistics: AttentionStatisticsTensors } {
  const normWeight = options.norm?.weight ?? null;
  return runWithoutGradient('diffAttentionWithStatistics', [q, k, v, lambda, normWeight], ({ kernel }) =>
    diffAttentionStatistics(
      kernel,
      q,
      k,
      v,
      lambda,
      normWeight,
      diffAttentionCall('diffAttentionWithStatistics', q, k, v, lambda, options),
    ),
  );
}

function diffAttentionStatistics(
  kernel: ForwardCall['kernel'],
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lambda: Tensor,
  normWeight: Tensor | null,
  call: DiffAttentionCall,
): { output: Tensor; statistics: AttentionStatisticsTensors } {
  const { backend, impl } = kernel('diffAttentionWithStatistics', [q, k, v, lambda, normWeight]);
  const [b, t, h, dv] = call.out.shape;
  const spec = {
    logSumExp: { shape: [b, t, h, 2], dtype: 'float32' as const },
    mapOutputs: { shape: [b, t, h, 2, dv], dtype: 'float32' as const },
  };
  const r = impl(q, k, v, lambda, normWeight, call.attrs, call.out, spec);
  return {
    output: wrapOutput(backend, r.output, call.out),
    statistics: {
      logSumExp: wrapOutput(backend, r.statistics.logSumExp, spec.logSumExp),
      mapOutputs: wrapOutput(backend, r.statistics.mapOutputs, spec.mapOutputs),
    },
  };
}

/**
 * The gradients of diffAttention (see DiffAttentionGradientSpecs) for the gradient dOut of its output,
 * from the same inputs and options and the statistics its forward saved.
 */
export function diffAttentionBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lambda: Tensor,
  statistics: AttentionStatisticsTensors,
  dOut: Tensor,
  options: DiffAttentionOptions = {},
): { dq: Tensor; dk: Tensor; dv: Tensor; dLambda: Tensor; dNormWeight: Tensor | null } {
  const normWeight = options.norm?.weight ?? null;
  const { logSumExp, mapOutputs } = statistics;
  const operands = [q, k, v, lambda, normWeight, logSumExp, mapOutputs, dOut];
  return runWithoutGradient('diffAttentionBackward', operands, ({ kernel }) => {
    const { backend, impl } = kernel('diffAttentionBackward');
    const call = diffAttentionCall('diffAttentionBackward', q, k, v, lambda, options);
    const [b, t, h, dv] = call.out.shape;
    checkStatistic('diffAttentionBackward logSumExp', logSumExp, [b, t, h, 2]);
    if (!mapOutputs) throw new ArgumentError('diffAttentionBackward mapOutputs', 'the saved map outputs', null);
    checkStatistic('diffAttentionBackward mapOutputs', mapOutputs, [b, t, h, 2, dv]);
    assertSameDType('diffAttentionBackward dOut', q, dOut);
    if (!shapesEqual(dOut.shape, call.out.shape)) {
      throw new ShapeError('diffAttentionBackward dOut', formatShape(call.out.shape), dOut.shape);
    }
    const like = (x: Tensor): OutputSpec => ({ shape: x.shape, dtype: x.dtype });
    const specs = {
      dq: like(q),
      dk: like(k),
      dv: like(v),
      dLambda: like(lambda),
      dNormWeight: normWeight && like(normWeight),
    };
    const r = impl(q, k, v, lambda, normWeight, { logSumExp, mapOutputs }, dOut, call.attrs, specs);
    return {
      dq: wrapOutput(backend, r.dq, specs.dq),
      dk: wrapOutput(backend, r.dk, specs.dk),
      dv: wrapOutput(backend, r.dv, specs.dv),
      dLambda: wrapOutput(backend, r.dLambda, specs.dLambda),
      dNormWeight: specs.dNormWeight && wrapOutput(backend, r.dNormWeight, specs.dNormWeight),
    };
  });
}

interface AttentionCall {
  readonly attrs: AttentionMaskAttrs;
  readonly out: OutputSpec;
}

function attentionCall(op: string, q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions): AttentionCall {
  assertFloat(`${op} q`, q);
  assertSameDType(`${op} k`, q, k);
  assertSameDType(`${op} v`, q, v);
  if (q.rank !== 4) throw new ShapeError(`${op} q`, '[B, T, H, dk]', q.shape);
  if (v.rank !== 4) throw new ShapeError(`${op} v`, '[B, S, Hkv, dv]', v.shape);
  const [b, t, h, dk] = q.shape;
  const [vb, s, hkv, dv] = v.shape;
  if (vb !== b) throw new ShapeError(`${op} v`, `[${b}, S, Hkv, dv]`, v.shape, `q is ${formatShape(q.shape)}`);
  if (hkv < 1 || h % hkv !== 0) {
    throw new ShapeError(`${op} v`, `[B, S, Hkv, dv] with H = ${h} a multiple of Hkv`, v.shape);
  }
  if (k.rank !== 4 || k.shape[0] !== b || k.shape[1] !== s || k.shape[2] !== hkv || k.shape[3] !== dk) {
    throw new ShapeError(`${op} k`, `[${b}, ${s}, ${hkv}, ${dk}]`, k.shape);
  }
  return { attrs: maskAttrs(op, options, t, s, dk), out: { shape: [b, t, h, dv], dtype: q.dtype } };
}

/**
 * Standard attention (baseline Transformer): q [B, T, H, dk], k [B, S, Hkv, dk], v [B, S, Hkv, dv].
 * On a recording tape it runs attentionWithStatistics' kernel, whose log-sum-exp its rule reads.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  const call = attentionCall('attention', q, k, v, options);
  return runOp('attention', [q, k, v], call.attrs, ({ kernel, recording }) => {
    if (!recording) {
      const { backend, impl } = kernel('attention');
      return { y: wrapOutput(backend, impl(q, k, v, call.attrs, call.out), call.out) };
    }
    const { output, statistics } = attentionStatistics(kernel, q, k, v, call);
    return { y: output, statistics: { logSumExp: statistics.logSumExp } };
  });
}

/** attention, also returning the log-sum-exp its backward needs. */
export function attentionWithStatistics(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: AttentionOptions = {},
): { output: Tensor; statistics: AttentionStatisticsTensors } {
  return runWithoutGradient('attentionWithStatistics', [q, k, v], ({ kernel }) =>
    attentionStatistics(kernel, q, k, v, attentionCall('attentionWithStatistics', q, k, v, options)),
  );
}

function attentionStatistics(
  kernel: ForwardCall['kernel'],
  q: Tensor,
  k: Tensor,
  v: Tensor,
  call: AttentionCall,
): { output: Tensor; statistics: AttentionStatisticsTensors } {
  const { backend, impl } = kernel('attentionWithStatistics', [q, k, v]);
  const [b, t, h] = call.out.shape;
  const spec = { logSumExp: { shape: [b, t, h, 1], dtype: 'float32' as const }, mapOutputs: null };
  const r = impl(q, k, v, call.attrs, call.out, spec);
  return {
    output: wrapOutput(backend, r.output, call.out),
    statistics: { logSumExp: wrapOutput(backend, r.statistics.logSumExp, spec.logSumExp), mapOutputs: null },
  };
}

/** The gradients of attention (see AttentionGradientSpecs) from its inputs, output and saved log-sum-exp. */
export function attentionBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  output: Tensor,
  logSumExp: Tensor,
  dOut: Tensor,
  options: AttentionOptions = {},
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  return runWithoutGradient('attentionBackward', [q, k, v, output, logSumExp, dOut], ({ kernel }) => {
    const { backend, impl } = kernel('attentionBackward');
    const call = attentionCall('attentionBackward', q, k, v, options);
    const [b, t, h] = call.out.shape;
    checkStatistic('attentionBackward logSumExp', logSumExp, [b, t, h, 1]);
    for (const [name, x] of [
      ['output', output],
      ['dOut', dOut],
    ] as const) {
      assertSameDType(`attentionBackward ${name}`, q, x);
      if (!shapesEqual(x.shape, call.out.shape)) {
        throw new ShapeError(`attentionBackward ${name}`, formatShape(call.out.shape), x.shape);
      }
    }
    const like = (x: Tensor): OutputSpec => ({ shape: x.shape, dtype: x.dtype });
    const specs = { dq: like(q), dk: like(k), dv: like(v) };
    const r = impl(q, k, v, output, { logSumExp, mapOutputs: null }, dOut, call.attrs, specs);
    return {
      dq: wrapOutput(backend, r.dq, specs.dq),
      dk: wrapOutput(backend, r.dk, specs.dk),
      dv: wrapOutput(backend, r.dv, specs.dv),
    };
  });
}

function checkStatistic(what: string, x: Tensor, shape: readonly number[]): void {
  assertDType(what, x, 'float32');
  if (!shapesEqual(x.shape, shape)) throw new ShapeError(what, formatShape(shape), x.shape);
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
