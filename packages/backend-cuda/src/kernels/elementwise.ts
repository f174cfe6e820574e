/** add, swiglu and sigmoid: one thread per element, float32 arithmetic, stored in the input's dtype. */
import type { AddAttrs, OutputSpec, SigmoidAttrs, SwigluAttrs, TensorView } from '@diff-transformer/core';
import { sizeOf } from '@diff-transformer/core';
import { dtypeCode, pointerOf, type CudaStorage } from '../storage.js';
import type { KernelContext } from './context.js';

export function elementwiseKernels(ctx: KernelContext) {
  return {
    add(a: TensorView, b: TensorView, _attrs: AddAttrs, out: OutputSpec): CudaStorage {
      const y = ctx.output(out);
      return ctx.launch('add', y, () =>
        ctx.addon.add(pointerOf(a), pointerOf(b), y.pointer, sizeOf(out.shape), dtypeCode(out.dtype)),
      );
    },
    swiglu(gate: TensorView, up: TensorView, _attrs: SwigluAttrs, out: OutputSpec): CudaStorage {
      const y = ctx.output(out);
      return ctx.launch('swiglu', y, () =>
        ctx.addon.swiglu(pointerOf(gate), pointerOf(up), y.pointer, sizeOf(out.shape), dtypeCode(out.dtype)),
      );
    },
    sigmoid(x: TensorView, _attrs: SigmoidAttrs, out: OutputSpec): CudaStorage {
      const y = ctx.output(out);
      return ctx.launch('sigmoid', y, () =>
        ctx.addon.sigmoid(pointerOf(x), y.pointer, sizeOf(out.shape), dtypeCode(out.dtype)),
      );
    },
  };
}
