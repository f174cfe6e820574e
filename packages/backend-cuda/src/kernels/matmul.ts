/**
 * matmul: float32 on a tiled SIMT kernel; float16/bfloat16 on tensor cores (mma.sync, float32 accumulation).
 * b without batch dimensions is shared by every batch entry of a (a weight).
 */
import type { MatmulAttrs, OutputSpec, TensorView } from '@diff-transformer/core';
import { dtypeCode, pointerOf, type CudaStorage } from '../storage.js';
import { product, type KernelContext } from './context.js';

export function matmulKernels(ctx: KernelContext) {
  return {
    matmul(a: TensorView, b: TensorView, attrs: MatmulAttrs, out: OutputSpec): CudaStorage {
      const rank = out.shape.length;
      const m = out.shape[rank - 2];
      const n = out.shape[rank - 1];
      const k = attrs.transposeA ? a.shape[a.shape.length - 2] : a.shape[a.shape.length - 1];
      const batches = product(out.shape.slice(0, -2));
      const y = ctx.output(out);
      return ctx.launch('matmul', y, () =>
        ctx.addon.matmul(pointerOf(a), pointerOf(b), y.pointer, batches, m, n, k, attrs.transposeA, attrs.transposeB, b.shape.length === 2, dtypeCode(out.dtype)),
      );
    },
  };
}
