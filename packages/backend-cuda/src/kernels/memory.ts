/** narrow and cacheWrite: strided device-to-device copies (cudaMemcpy2DAsync), exact in every dtype. */
import type { CacheWriteAttrs, NarrowAttrs, OutputSpec, TensorView } from '@diff-transformer/core';
import { bytesPerElement, sizeOf } from '@diff-transformer/core';
import { storageOf, type CudaStorage } from '../storage.js';
import type { KernelContext } from './context.js';

export function memoryKernels(ctx: KernelContext) {
  return {
    narrow(x: TensorView, attrs: NarrowAttrs, out: OutputSpec): CudaStorage {
      const { axis, start, length } = attrs;
      const element = bytesPerElement(x.dtype);
      const outer = sizeOf(x.shape.slice(0, axis));
      const inner = sizeOf(x.shape.slice(axis + 1)) * element;
      const run = length * inner;
      const y = ctx.output(out);
      // Each outer index contributes one contiguous run of `length` slices.
      return ctx.launch('narrow', y, () =>
        ctx.addon.copy2d(y.pointer, run, storageOf(x).pointer + start * inner, x.shape[axis] * inner, run, outer),
      );
    },

    cacheWrite(cache: TensorView, values: TensorView, attrs: CacheWriteAttrs): void {
      const [batch, capacity] = cache.shape;
      const tokens = values.shape[1];
      const row = sizeOf(cache.shape.slice(2)) * bytesPerElement(cache.dtype);
      ctx.launch('cacheWrite', null, () =>
        ctx.addon.copy2d(
          storageOf(cache).pointer + attrs.position * row,
          capacity * row,
          storageOf(values).pointer,
          tokens * row,
          tokens * row,
          batch,
        ),
      );
    },
  };
}
