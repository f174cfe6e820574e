/**
 * An engine over C kernels on a heap, what the WebAssembly and native engines share: every tensor
 * lives in one KernelHeap; matmul, both attention kernels and their backward, rmsNorm, the
 * elementwise kernels, rotary and the training kernels are the C kernels' entry points run on a
 * KernelPool (./bindings.ts), and the rest (embedding, logits, copies, and exp, mul and scale on
 * λ-sized tensors: a few percent of a training step) run the TypeScript code of ../kernels on views
 * of the same heap, so no tensor is ever copied between the two. Each engine brings its heap's
 * memory, its pool and its entry points (../engines/webassembly.ts, ../engines/native.ts).
 */
import type { HostArray, Kernels, OutputSpec, StorageHandle, TensorView } from '@diff-transformer/core';
import { sizeOf } from '@diff-transformer/core';
import type { Engine, EngineName } from '../engines/engine.js';
import type { HeapStats, HeapStorage, KernelHeap } from '../heap/heap.js';
import * as typescript from '../kernels/index.js';
import type { CpuDType } from '../storage.js';
import type { ThreadStats } from '../threads/pool.js';
import * as c from './bindings.js';
import type { CKernelContext, KernelPool } from './bindings.js';
import type { CKernelEntryPoints } from './entry-points.js';

/** What an engine over C kernels is made of: the WebAssembly engine's parts, or the native engine's. */
export interface CKernelEngineParts {
  readonly name: EngineName;
  readonly detail: string;
  readonly heap: KernelHeap;
  readonly pool: KernelPool;
  readonly exports: CKernelEntryPoints;
  readonly sharedMemory: boolean;
  threadStats(): ThreadStats;
  dispose(): void;
  /** Kernels that replace the shared bindings (the native engine's matmul with packed weights). */
  readonly overrides?: (context: CKernelContext) => Partial<Kernels>;
  /** Called after each in-place write of a storage (cacheWrite's cache, adamw's tensors). */
  readonly written?: (storage: HeapStorage) => void;
  /** Called before a storage is freed. */
  readonly freeing?: (storage: HeapStorage) => void;
  /** The heap's statistics, when the memory's size is not what its buffer says. */
  readonly heapStats?: () => HeapStats;
}

/** An engine whose tensors live in one heap and whose kernels are the C kernels' entry points. */
export function cKernelEngine(parts: CKernelEngineParts): Engine & { readonly heap: KernelHeap } {
  const { heap, pool, exports } = parts;
  const context: CKernelContext = { heap, pool, exports };
  const written = parts.written ?? (() => {});
  const freeing = parts.freeing ?? (() => {});

  const storage = (view: TensorView): HeapStorage => view.storage as HeapStorage;
  const output = (out: OutputSpec): HeapStorage => heap.allocateTensor(out.dtype as CpuDType, sizeOf(out.shape));
  // What the TypeScript kernels read: the tensor's block as a typed array. Made after the output is
  // allocated, since an allocation may grow the memory and replace its buffer.
  const local = (view: TensorView): TensorView => ({
    storage: heap.array(storage(view)),
    shape: view.shape,
    dtype: view.dtype,
  });

  const table: Kernels = {
    matmul: (a, b, attrs, out) => c.matmul(context, a, b, attrs, out),
    diffAttention: (q, k, v, lambda, normWeight, attrs, out) =>
      c.diffAttention(context, q, k, v, lambda, normWeight, attrs, out),
    attention: (q, k, v, attrs, out) => c.attention(context, q, k, v, attrs, out),
    rmsNorm: (x, weight, attrs, out) => c.rmsNorm(context, x, weight, attrs, out),
    swiglu: (gate, up, attrs, out) => c.swiglu(context, gate, up, attrs, out),
    add: (a, b, attrs, out) => c.add(context, a, b, attrs, out),
    sigmoid: (x, attrs, out) => c.sigmoid(context, x, attrs, out),

    embedding: (table, ids, attrs, out) => {
      const y = output(out);
      typescript.embedding(local(table), local(ids), attrs, out, heap.floats(y));
      return y;
    },
    rotary: (x, cos, sin, attrs, out) => c.rotary(context, x, cos, sin, attrs, out),
    softmax: (x, attrs, out) => {
      const y = output(out);
      typescript.softmax(local(x), attrs, out, heap.floats(y));
      return y;
    },
    argmax: (x, attrs, out) => {
      const y = output(out);
      typescript.argmax(local(x), attrs, out, heap.ints(y));
      return y;
    },
    narrow: (x, attrs, out) => {
      const y = output(out);
      typescript.narrow(local(x), attrs, out, heap.array(y));
      return y;
    },
    cacheWrite: (cache, values, attrs) => {
      typescript.cacheWrite(local(cache), local(values), attrs);
      written(storage(cache));
    },
    // Small and rare (DIFF V1's λ, gradient rules): the TypeScript loops over the heap suffice.
    exp: (x, attrs, out) => {
      const y = output(out);
      typescript.exp(local(x), attrs, out, heap.floats(y));
      return y;
    },
    mul: (a, b, attrs, out) => {
      const y = output(out);
      typescript.mul(local(a), local(b), attrs, out, heap.floats(y));
      return y;
    },
    scale: (x, attrs, out) => {
      const y = output(out);
      typescript.scale(local(x), attrs, out, heap.floats(y));
      return y;
    },
    sumSquares: (x, attrs, out) => c.sumSquares(context, x, attrs, out),
    diffAttentionWithStatistics: (q, k, v, lambda, normWeight, attrs, out, statistics) =>
      c.diffAttentionWithStatistics(context, q, k, v, lambda, normWeight, attrs, out, statistics),
    attentionWithStatistics: (q, k, v, attrs, out, statistics) =>
      c.attentionWithStatistics(context, q, k, v, attrs, out, statistics),
    diffAttentionBackward: (q, k, v, lambda, normWeight, statistics, dOut, attrs, out) =>
      c.diffAttentionBackward(context, q, k, v, lambda, normWeight, statistics, dOut, attrs, out),
    attentionBackward: (q, k, v, output, statistics, dOut, attrs, out) =>
      c.attentionBackward(context, q, k, v, output, statistics, dOut, attrs, out),
    rmsNormBackward: (x, weight, dy, attrs, out) => c.rmsNormBackward(context, x, weight, dy, attrs, out),
    swigluBackward: (gate, up, dy, attrs, out) => c.swigluBackward(context, gate, up, dy, attrs, out),
    embeddingBackward: (ids, dy, attrs, out) => c.embeddingBackward(context, ids, dy, attrs, out),
    crossEntropy: (logits, targets, attrs, out) => c.crossEntropy(context, logits, targets, attrs, out),
    adamw: (param, grad, m, v, attrs) => {
      c.adamw(context, param, grad, m, v, attrs);
      for (const view of [param, m, v]) written(storage(view));
    },
    ...parts.overrides?.(context),
  };

  return {
    heap,
    name: parts.name,
    detail: parts.detail,
    threads: pool.threads,
    sharedMemory: parts.sharedMemory,
    kernels: table,
    upload(data: HostArray, dtype: CpuDType): HeapStorage {
      const block = heap.allocateTensor(dtype, data.length);
      heap.array(block).set(data);
      return block;
    },
    zeros(size: number, dtype: CpuDType): HeapStorage {
      const block = heap.allocateTensor(dtype, size);
      heap.array(block).fill(0);
      return block;
    },
    // slice() of a view copies into a new, unshared array the caller owns.
    read: (handle: StorageHandle, size: number) => heap.array(handle as HeapStorage).slice(0, size),
    free: (handle: StorageHandle) => {
      freeing(handle as HeapStorage);
      heap.freeTensor(handle as HeapStorage);
    },
    heapStats: parts.heapStats ?? (() => heap.stats),
    resetHeapPeak: () => heap.resetPeak(),
    threadStats: () => parts.threadStats(),
    dispose: () => parts.dispose(),
    guards: {
      enable: (on: boolean) => heap.enableGuards(on),
      get enabled() {
        return heap.guarding;
      },
      check: () => heap.checkGuards(),
    },
  };
}
