/** The row-wise kernels: rmsNorm, rotary, embedding, softmax, argmax (one block per row on the device). */
import type {
  ArgmaxAttrs,
  EmbeddingAttrs,
  OutputSpec,
  RmsNormAttrs,
  RotaryAttrs,
  SoftmaxAttrs,
  TensorView,
} from '@diff-transformer/core';
import { UnsupportedKernelError, sizeOf } from '@diff-transformer/core';
import { dtypeCode, pointerOf, type CudaStorage } from '../storage.js';
import type { KernelContext } from './context.js';

const lastDim = (shape: readonly number[]) => shape[shape.length - 1];

export function rowKernels(ctx: KernelContext) {
  return {
    rmsNorm(x: TensorView, weight: TensorView | null, attrs: RmsNormAttrs, out: OutputSpec): CudaStorage {
      const width = lastDim(x.shape);
      const rows = width === 0 ? 0 : sizeOf(x.shape) / width;
      const y = ctx.output(out);
      return ctx.launch('rmsNorm', y, () =>
        ctx.addon.rmsNorm(
          pointerOf(x),
          pointerOf(weight),
          weight ? dtypeCode(weight.dtype) : 0,
          y.pointer,
          rows,
          width,
          attrs.eps,
          dtypeCode(out.dtype),
        ),
      );
    },

    rotary(x: TensorView, cos: TensorView, sin: TensorView, attrs: RotaryAttrs, out: OutputSpec): CudaStorage {
      if (cos.dtype !== sin.dtype) {
        throw new UnsupportedKernelError(
          'rotary',
          'cuda',
          `cos (${cos.dtype}) and sin (${sin.dtype}) tables of different dtypes`,
        );
      }
      const [batch, tokens, heads, width] = x.shape;
      const y = ctx.output(out);
      return ctx.launch('rotary', y, () =>
        ctx.addon.rotary(
          pointerOf(x),
          pointerOf(cos),
          pointerOf(sin),
          dtypeCode(cos.dtype),
          y.pointer,
          batch,
          tokens,
          heads,
          width,
          cos.shape[1],
          attrs.positionOffset,
          attrs.layout === 'interleaved',
          dtypeCode(out.dtype),
        ),
      );
    },

    embedding(table: TensorView, ids: TensorView, _attrs: EmbeddingAttrs, out: OutputSpec): CudaStorage {
      const y = ctx.output(out);
      return ctx.launch('embedding', y, () =>
        ctx.addon.embedding(
          pointerOf(table),
          pointerOf(ids),
          y.pointer,
          sizeOf(ids.shape),
          table.shape[1],
          dtypeCode(out.dtype),
        ),
      );
    },

    softmax(x: TensorView, attrs: SoftmaxAttrs, out: OutputSpec): CudaStorage {
      const width = lastDim(x.shape);
      const y = ctx.output(out);
      return ctx.launch('softmax', y, () =>
        ctx.addon.softmax(
          pointerOf(x),
          y.pointer,
          sizeOf(x.shape) / width,
          width,
          1 / attrs.temperature,
          dtypeCode(out.dtype),
        ),
      );
    },

    argmax(x: TensorView, _attrs: ArgmaxAttrs, out: OutputSpec): CudaStorage {
      const width = lastDim(x.shape);
      const y = ctx.output(out);
      return ctx.launch('argmax', y, () =>
        ctx.addon.argmax(pointerOf(x), y.pointer, sizeOf(x.shape) / width, width, dtypeCode(x.dtype)),
      );
    },
  };
}
