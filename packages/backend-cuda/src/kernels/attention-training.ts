/**
 * What training needs of the attention kernels:
 *   *WithStatistics   the forward kernels (flash or rows, as for inference) also write each map's log-sum-exp
 *                     and, for diffAttention, each map's own output (float32), when given the pointers
 *   *Backward         native/attention_backward.cu: FlashAttention-2's backward in SIMT kernels (a row pass,
 *                     key-major dK/dV summed over the heads of a GQA group, query-major dQ without atomics,
 *                     ordered sums for a per-head dλ and the norm weight). No T×S buffer; deterministic.
 */
import type {
  AttentionAttrs,
  AttentionGradientSpecs,
  AttentionGradients,
  AttentionStatisticsSpec,
  AttentionStatisticsView,
  AttentionWithStatistics,
  DiffAttentionAttrs,
  DiffAttentionGradientSpecs,
  DiffAttentionGradients,
  OutputSpec,
  TensorView,
} from '@diff-transformer/core';
import { UnsupportedKernelError } from '@diff-transformer/core';
import { pointerOf } from '../storage.js';
import { attentionParams, checkWidths } from './attention.js';
import type { KernelContext } from './context.js';
import { launchWithOutputs } from './outputs.js';

/**
 * The Float64Array the addon's attentionBackward reads: the forward's layout (attentionParams) with the saved
 * statistics in its two statistics slots, then output dOut dq dk dv dLambda dNormWeight.
 */
export function backwardParams(
  forward: Float64Array,
  pointers: {
    output: number;
    dOut: number;
    dq: number;
    dk: number;
    dv: number;
    dLambda: number;
    dNormWeight: number;
  },
): Float64Array {
  const { output, dOut, dq, dk, dv, dLambda, dNormWeight } = pointers;
  return Float64Array.from([...forward, output, dOut, dq, dk, dv, dLambda, dNormWeight]);
}

export function attentionTrainingKernels(ctx: KernelContext) {
  /** The backward's tiles keep q, k, v and dO rows of the head widths in shared memory (≤ 96 KiB). */
  const checkBackwardWidths = (kernel: string, q: TensorView, v: TensorView): void => {
    const dk = q.shape[3];
    const dv = v.shape[3];
    if (ctx.addon.attentionBackwardTile(dk, dv) === 0) {
      throw new UnsupportedKernelError(
        kernel,
        'cuda',
        `head widths dk ${dk} and dv ${dv} (the backward's smallest tile of 4 rows needs more than 96 KiB of shared memory)`,
      );
    }
  };

  return {
    diffAttentionWithStatistics(
      q: TensorView,
      k: TensorView,
      v: TensorView,
      lambda: TensorView,
      normWeight: TensorView | null,
      attrs: DiffAttentionAttrs,
      out: OutputSpec,
      statistics: AttentionStatisticsSpec,
    ): AttentionWithStatistics {
      checkWidths('diffAttentionWithStatistics', v);
      const specs = { output: out, logSumExp: statistics.logSumExp, mapOutputs: statistics.mapOutputs };
      const r = launchWithOutputs(ctx, 'diffAttentionWithStatistics', specs, (o) =>
        ctx.addon.attention(
          attentionParams(q, k, v, lambda, normWeight, attrs, o.output.pointer, true, {
            logSumExp: o.logSumExp.pointer,
            mapOutputs: o.mapOutputs?.pointer ?? 0,
          }),
        ),
      );
      return { output: r.output, statistics: { logSumExp: r.logSumExp, mapOutputs: r.mapOutputs } };
    },

    attentionWithStatistics(
      q: TensorView,
      k: TensorView,
      v: TensorView,
      attrs: AttentionAttrs,
      out: OutputSpec,
      statistics: AttentionStatisticsSpec,
    ): AttentionWithStatistics {
      checkWidths('attentionWithStatistics', v);
      const specs = { output: out, logSumExp: statistics.logSumExp };
      const r = launchWithOutputs(ctx, 'attentionWithStatistics', specs, (o) =>
        ctx.addon.attention(
          attentionParams(q, k, v, null, null, attrs, o.output.pointer, false, {
            logSumExp: o.logSumExp.pointer,
            mapOutputs: 0,
          }),
        ),
      );
      return { output: r.output, statistics: { logSumExp: r.logSumExp, mapOutputs: null } };
    },

    diffAttentionBackward(
      q: TensorView,
      k: TensorView,
      v: TensorView,
      lambda: TensorView,
      normWeight: TensorView | null,
      statistics: AttentionStatisticsView,
      dOut: TensorView,
      attrs: DiffAttentionAttrs,
      out: DiffAttentionGradientSpecs,
    ): DiffAttentionGradients {
      checkBackwardWidths('diffAttentionBackward', q, v);
      const saved = { logSumExp: pointerOf(statistics.logSumExp), mapOutputs: pointerOf(statistics.mapOutputs) };
      const forward = attentionParams(q, k, v, lambda, normWeight, attrs, 0, true, saved);
      const specs = { dq: out.dq, dk: out.dk, dv: out.dv, dLambda: out.dLambda, dNormWeight: out.dNormWeight };
      return launchWithOutputs(ctx, 'diffAttentionBackward', specs, (g) =>
        ctx.addon.attentionBackward(
          backwardParams(forward, {
            output: 0,
            dOut: pointerOf(dOut),
            dq: g.dq.pointer,
            dk: g.dk.pointer,
            dv: g.dv.pointer,
            dLambda: g.dLambda.pointer,
            dNormWeight: g.dNormWeight?.pointer ?? 0,
          }),
        ),
      );
    },

    attentionBackward(
      q: TensorView,
      k: TensorView,
      v: TensorView,
      output: TensorView,
      statistics: AttentionStatisticsView,
      dOut: TensorView,
      attrs: AttentionAttrs,
      out: AttentionGradientSpecs,
    ): AttentionGradients {
      checkBackwardWidths('attentionBackward', q, v);
      const saved = { logSumExp: pointerOf(statistics.logSumExp), mapOutputs: 0 };
      const forward = attentionParams(q, k, v, null, null, attrs, 0, false, saved);
      return launchWithOutputs(ctx, 'attentionBackward', { dq: out.dq, dk: out.dk, dv: out.dv }, (g) =>
        ctx.addon.attentionBackward(
          backwardParams(forward, {
            output: pointerOf(output),
            dOut: pointerOf(dOut),
            dq: g.dq.pointer,
            dk: g.dk.pointer,
            dv: g.dv.pointer,
            dLambda: 0,
            dNormWeight: 0,
          }),
        ),
      );
    },
  };
}
