/**
 * diffAttention and attention. One native entry point picks the implementation (native/attention.cu):
 *   flash   both kernels in every dtype (float32 as 3xTF32) and any T, for the head widths of FLASH_HEAD_WIDTHS
 *           and FLASH_ATTENTION_HEAD_WIDTHS where its shared memory fits the device: the tensor-core kernel
 *           (both maps in one pass, online softmax, shared V fragments, fused RMSNorm)
 *   rows    everything else: a streaming SIMT kernel, one block per query row
 * Either splits the keys across blocks, and combines them, when its blocks alone would leave the device idle
 * (decoding, a short prefill against a long cache). Neither stores a T×S matrix. DIFFTX_CUDA_ATTENTION=simt
 * (read at init) forces `rows` everywhere.
 */
import type { AttentionAttrs, DiffAttentionAttrs, OutputSpec, TensorView } from '@diff-transformer/core';
import { UnsupportedKernelError } from '@diff-transformer/core';
import { dtypeCode, pointerOf, type CudaStorage } from '../storage.js';
import type { KernelContext } from './context.js';

/** Head widths (dk, dv) the tensor-core kernel has for diffAttention: DIFF V1 (d, 2d) and V2 (d, d). */
export const FLASH_HEAD_WIDTHS: ReadonlyArray<readonly [number, number]> = [
  [16, 16],
  [16, 32],
  [32, 32],
  [32, 64],
  [64, 64],
  [64, 128],
  [96, 96],
  [96, 192],
  [128, 128],
  [128, 256],
];

/** Head widths (dk, dv) the tensor-core kernel has for standard attention. */
export const FLASH_ATTENTION_HEAD_WIDTHS: ReadonlyArray<readonly [number, number]> = [
  [16, 16],
  [32, 32],
  [64, 64],
  [96, 96],
  [128, 128],
];

/** Largest dv the rows kernel holds (128 threads × 8 columns). */
export const MAX_VALUE_WIDTH = 1024;

/** Where a *WithStatistics kernel writes what its backward needs (0: not asked). */
export interface StatisticsPointers {
  readonly logSumExp: number;
  readonly mapOutputs: number;
}

/**
 * The Float64Array layout dtx::AttentionParams is read from (native/addon.cc, attention_params):
 * q k v lambda normWeight out | dtype lambdaDtype normWeightDtype | batch tokens keys heads kvHeads keyHeads
 * dk dv | diff causal lambdaPerToken norm | keyOffset keyLength | scale eps outputScale | logSumExp mapOutputs.
 */
export function attentionParams(
  q: TensorView,
  k: TensorView,
  v: TensorView,
  lambda: TensorView | null,
  normWeight: TensorView | null,
  attrs: AttentionAttrs | DiffAttentionAttrs,
  out: number,
  diff: boolean,
  statistics: StatisticsPointers = { logSumExp: 0, mapOutputs: 0 },
): Float64Array {
  const [batch, tokens, queryHeads, dk] = q.shape;
  const [, keys, keyHeads] = k.shape;
  const [, , kvHeads, dv] = v.shape;
  const norm = diff ? (attrs as DiffAttentionAttrs).norm : null;
  return Float64Array.from([
    pointerOf(q),
    pointerOf(k),
    pointerOf(v),
    pointerOf(lambda),
    norm ? pointerOf(normWeight) : 0,
    out,
    dtypeCode(q.dtype),
    lambda ? dtypeCode(lambda.dtype) : 0,
    normWeight ? dtypeCode(normWeight.dtype) : 0,
    batch,
    tokens,
    keys,
    diff ? queryHeads / 2 : queryHeads,
    kvHeads,
    keyHeads,
    dk,
    dv,
    diff ? 1 : 0,
    attrs.causal ? 1 : 0,
    lambda && lambda.shape.length === 3 ? 1 : 0,
    norm ? 1 : 0,
    attrs.keyOffset,
    attrs.keyLength,
    attrs.scale,
    norm?.eps ?? 0,
    norm?.outputScale ?? 1,
    statistics.logSumExp,
    statistics.mapOutputs,
  ]);
}

/** The forward kernels hold a value row in registers: dv ≤ MAX_VALUE_WIDTH. */
export function checkWidths(kernel: string, v: TensorView): void {
  const dv = v.shape[3];
  if (dv > MAX_VALUE_WIDTH) {
    throw new UnsupportedKernelError(
      kernel,
      'cuda',
      `value heads of width ${dv} (at most ${MAX_VALUE_WIDTH} are supported)`,
    );
  }
}

export function attentionKernels(ctx: KernelContext) {
  return {
    diffAttention(
      q: TensorView,
      k: TensorView,
      v: TensorView,
      lambda: TensorView,
      normWeight: TensorView | null,
      attrs: DiffAttentionAttrs,
      out: OutputSpec,
    ): CudaStorage {
      checkWidths('diffAttention', v);
      const y = ctx.output(out);
      return ctx.launch('diffAttention', y, () =>
        ctx.addon.attention(attentionParams(q, k, v, lambda, normWeight, attrs, y.pointer, true)),
      );
    },

    attention(q: TensorView, k: TensorView, v: TensorView, attrs: AttentionAttrs, out: OutputSpec): CudaStorage {
      checkWidths('attention', v);
      const y = ctx.output(out);
      return ctx.launch('attention', y, () =>
        ctx.addon.attention(attentionParams(q, k, v, null, null, attrs, y.pointer, false)),
      );
    },
  };
}
