/**
 * matmul: float32 on a tiled SIMT kernel; float16/bfloat16 on tensor cores (mma.sync, float32 accumulation).
 * b without batch dimensions is shared by every batch entry of a (a weight).
 */
import { matmulDims, type MatmulAttrs, type OutputSpec, type TensorView } from '@diff-transformer/core';
import { dtypeCode, pointerOf, type CudaStorage } from '../storage.js';
import type { KernelContext } from './context.js';

export function matmulKernels(ctx: KernelContext) {
  return {
    matmul(a: TensorView, b: TensorView, attrs: MatmulAttrs, out: OutputSpec): CudaStorage {
      const { batches, m, n, k, sharedB } = matmulDims(a, b, attrs, out);
      const y = ctx.output(out);
      return ctx.launch('matmul', y, () =>
        ctx.addon.matmul(
          pointerOf(a),
          pointerOf(b),
          y.pointer,
          batches,
          m,
          n,
          k,
          attrs.transposeA,
          attrs.transposeB,
          sharedB,
          dtypeCode(out.dtype),
        ),
      );
    },
  };
}
