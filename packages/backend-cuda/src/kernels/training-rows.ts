/**
 * The training kernels that reduce (native/rows_training.cu): sumSquares, rmsNorm's backward, the fused
 * cross-entropy and embedding's backward. Every sum over rows runs in a fixed order on the device (two
 * stages whose shapes depend on the sizes only, no float atomics), so equal inputs give equal bits.
 */
import type {
  CrossEntropyAttrs,
  CrossEntropyOutputs,
  CrossEntropySpecs,
  EmbeddingBackwardAttrs,
  OutputSpec,
  RmsNormAttrs,
  RmsNormGradientSpecs,
  RmsNormGradients,
  SumSquaresAttrs,
  TensorView,
} from '@diff-transformer/core';
import { UnsupportedKernelError, sizeOf } from '@diff-transformer/core';
import { dtypeCode, pointerOf, type CudaStorage } from '../storage.js';
import type { KernelContext } from './context.js';
import { launchWithOutputs } from './outputs.js';

const lastDim = (shape: readonly number[]) => shape[shape.length - 1];

/** Targets are int32: an ignoreIndex outside that range can match none, and neither can INT32_MIN (< 0). */
function int32IgnoreIndex(ignoreIndex: number): number {
  return ignoreIndex >= -(2 ** 31) && ignoreIndex < 2 ** 31 ? ignoreIndex : -(2 ** 31);
}

export function trainingRowKernels(ctx: KernelContext) {
  return {
    sumSquares(x: TensorView, _attrs: SumSquaresAttrs, out: OutputSpec): CudaStorage {
      const y = ctx.output(out);
      return ctx.launch('sumSquares', y, () =>
        ctx.addon.sumSquares(pointerOf(x), y.pointer, sizeOf(x.shape), dtypeCode(x.dtype)),
      );
    },

    rmsNormBackward(
      x: TensorView,
      weight: TensorView | null,
      dy: TensorView,
      attrs: RmsNormAttrs,
      out: RmsNormGradientSpecs,
    ): RmsNormGradients {
      const width = lastDim(x.shape);
      const rows = width === 0 ? 0 : sizeOf(x.shape) / width;
      return launchWithOutputs(ctx, 'rmsNormBackward', { dx: out.dx, dWeight: out.dWeight }, (g) =>
        ctx.addon.rmsNormBackward(
          pointerOf(x),
          pointerOf(weight),
          weight ? dtypeCode(weight.dtype) : 0,
          pointerOf(dy),
          g.dx.pointer,
          g.dWeight?.pointer ?? 0,
          rows,
          width,
          attrs.eps,
          dtypeCode(x.dtype),
        ),
      );
    },

    crossEntropy(
      logits: TensorView,
      targets: TensorView,
      attrs: CrossEntropyAttrs,
      out: CrossEntropySpecs,
    ): CrossEntropyOutputs {
      const [rows, vocab] = logits.shape;
      return launchWithOutputs(ctx, 'crossEntropy', { loss: out.loss, dLogits: out.dLogits }, (r) =>
        ctx.addon.crossEntropy(
          pointerOf(logits),
          pointerOf(targets),
          r.loss.pointer,
          r.dLogits.pointer,
          rows,
          vocab,
          int32IgnoreIndex(attrs.ignoreIndex),
          attrs.scale,
          dtypeCode(logits.dtype),
        ),
      );
    },

    embeddingBackward(ids: TensorView, dy: TensorView, attrs: EmbeddingBackwardAttrs, out: OutputSpec): CudaStorage {
      const count = sizeOf(ids.shape);
      if (count >= 2 ** 32) {
        throw new UnsupportedKernelError('embeddingBackward', 'cuda', `${count} ids (at most 2³² − 1 are supported)`);
      }
      const y = ctx.output(out);
      return ctx.launch('embeddingBackward', y, () =>
        ctx.addon.embeddingBackward(
          pointerOf(ids),
          pointerOf(dy),
          y.pointer,
          count,
          lastDim(dy.shape),
          attrs.vocabSize,
          dtypeCode(dy.dtype),
        ),
      );
    },
  };
}
