/** Kernels with several outputs (the backward kernels, crossEntropy): allocate them all, launch once. */
import type { OutputSpec } from '@diff-transformer/core';
import type { CudaStorage } from '../storage.js';
import type { KernelContext } from './context.js';

type Allocated<S> = { [K in keyof S]: S[K] extends OutputSpec ? CudaStorage : CudaStorage | null };

/**
 * Allocates one storage per spec (null specs stay null), then runs `enqueue` with them. When an allocation or
 * the launch throws, every storage allocated so far is freed before the (typed) error propagates.
 */
export function launchWithOutputs<S extends Record<string, OutputSpec | null>>(
  ctx: KernelContext,
  kernel: string,
  specs: S,
  enqueue: (outputs: Allocated<S>) => void,
): Allocated<S> {
  const made: CudaStorage[] = [];
  try {
    const outputs = {} as Record<string, CudaStorage | null>;
    for (const [name, spec] of Object.entries(specs)) {
      const storage = spec ? ctx.output(spec) : null;
      if (storage) made.push(storage);
      outputs[name] = storage;
    }
    ctx.launch(kernel, null, () => enqueue(outputs as Allocated<S>));
    return outputs as Allocated<S>;
  } catch (error) {
    for (const storage of made) ctx.release(storage);
    throw error;
  }
}
