/**
 * The WebAssembly engine: every tensor lives in the heap (one WebAssembly.Memory, shared with the
 * worker threads); matmul, both attention kernels, rmsNorm and the elementwise kernels run as SIMD
 * WebAssembly on the thread pool (./webassembly-kernels.ts), and the rest (embedding, rotary,
 * logits, copies: a few percent of a forward pass) run the TypeScript code of ../kernels on views
 * of the same heap, so no tensor is ever copied between the two.
 */
import type { HostArray, Kernels, OutputSpec, StorageHandle, TensorView } from '@diff-transformer/core';
import { sizeOf } from '@diff-transformer/core';
import { type HeapStorage, WasmHeap } from '../heap/heap.js';
import * as typescript from '../kernels/index.js';
import type { CpuDType } from '../storage.js';
import { ThreadPool } from '../threads/pool.js';
import { loadKernels, type SimdFlavour } from '../wasm/loader.js';
import type { Engine } from './engine.js';
import * as webassembly from './webassembly-kernels.js';

export interface WebAssemblyEngineOptions {
  readonly flavour: SimdFlavour;
  /** Threads that run kernels, the calling thread included. */
  readonly threads: number;
  /** Whether the memory may be shared with worker threads (false: one thread). */
  readonly shared: boolean;
}

export async function createWebAssemblyEngine(options: WebAssemblyEngineOptions): Promise<Engine> {
  const loaded = await loadKernels(options.flavour, options.shared);
  const heap = new WasmHeap(loaded.memory, loaded.exports.__heap_base.value as number, loaded.maximumBytes);
  const pool = await ThreadPool.start(loaded, heap, options.threads);
  const context = { heap, pool, exports: loaded.exports };

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
    matmul: (a, b, attrs, out) => webassembly.matmul(context, a, b, attrs, out),
    diffAttention: (q, k, v, lambda, normWeight, attrs, out) =>
      webassembly.diffAttention(context, q, k, v, lambda, normWeight, attrs, out),
    attention: (q, k, v, attrs, out) => webassembly.attention(context, q, k, v, attrs, out),
    rmsNorm: (x, weight, attrs, out) => webassembly.rmsNorm(context, x, weight, attrs, out),
    swiglu: (gate, up, attrs, out) => webassembly.swiglu(context, gate, up, attrs, out),
    add: (a, b, attrs, out) => webassembly.add(context, a, b, attrs, out),
    sigmoid: (x, attrs, out) => webassembly.sigmoid(context, x, attrs, out),

    embedding: (table, ids, attrs, out) => {
      const y = output(out);
      typescript.embedding(local(table), local(ids), attrs, out, heap.floats(y));
      return y;
    },
    rotary: (x, cos, sin, attrs, out) => {
      const y = output(out);
      typescript.rotary(local(x), local(cos), local(sin), attrs, out, heap.floats(y));
      return y;
    },
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
    cacheWrite: (cache, values, attrs) => typescript.cacheWrite(local(cache), local(values), attrs),
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
    sumSquares: (x, attrs, out) => {
      const y = output(out);
      typescript.sumSquares(local(x), attrs, out, heap.floats(y));
      return y;
    },
    diffAttentionWithStatistics: (q, k, v, lambda, normWeight, attrs, out, statistics) => {
      const y = output(out);
      const logSumExp = output(statistics.logSumExp);
      const mapOutputs = output(statistics.mapOutputs!);
      typescript.diffAttention(
        local(q),
        local(k),
        local(v),
        local(lambda),
        normWeight && local(normWeight),
        attrs,
        out,
        heap.floats(y),
        { logSumExp: heap.floats(logSumExp), mapOutputs: heap.floats(mapOutputs) },
      );
      return { output: y, statistics: { logSumExp, mapOutputs } };
    },
    attentionWithStatistics: (q, k, v, attrs, out, statistics) => {
      const y = output(out);
      const logSumExp = output(statistics.logSumExp);
      typescript.attention(local(q), local(k), local(v), attrs, out, heap.floats(y), heap.floats(logSumExp));
      return { output: y, statistics: { logSumExp, mapOutputs: null } };
    },
    diffAttentionBackward: (q, k, v, lambda, normWeight, statistics, dOut, attrs, out) => {
      const grads = {
        dq: output(out.dq),
        dk: output(out.dk),
        dv: output(out.dv),
        dLambda: output(out.dLambda),
        dNormWeight: out.dNormWeight && output(out.dNormWeight),
      };
      typescript.diffAttentionBackward(
        local(q),
        local(k),
        local(v),
        local(lambda),
        normWeight && local(normWeight),
        { logSumExp: local(statistics.logSumExp), mapOutputs: statistics.mapOutputs && local(statistics.mapOutputs) },
        local(dOut),
        attrs,
        out,
        {
          dq: heap.floats(grads.dq),
          dk: heap.floats(grads.dk),
          dv: heap.floats(grads.dv),
          dLambda: heap.floats(grads.dLambda),
          dNormWeight: grads.dNormWeight && heap.floats(grads.dNormWeight),
        },
      );
      return grads;
    },
    attentionBackward: (q, k, v, o, statistics, dOut, attrs, out) => {
      const grads = { dq: output(out.dq), dk: output(out.dk), dv: output(out.dv) };
      typescript.attentionBackward(
        local(q),
        local(k),
        local(v),
        local(o),
        { logSumExp: local(statistics.logSumExp), mapOutputs: null },
        local(dOut),
        attrs,
        out,
        { dq: heap.floats(grads.dq), dk: heap.floats(grads.dk), dv: heap.floats(grads.dv) },
      );
      return grads;
    },
    rmsNormBackward: (x, weight, dy, attrs, out) => {
      const grads = { dx: output(out.dx), dWeight: out.dWeight && output(out.dWeight) };
      typescript.rmsNormBackward(local(x), weight && local(weight), local(dy), attrs, out, {
        dx: heap.floats(grads.dx),
        dWeight: grads.dWeight && heap.floats(grads.dWeight),
      });
      return grads;
    },
    swigluBackward: (gate, up, dy, attrs, out) => {
      const grads = { dGate: output(out.dGate), dUp: output(out.dUp) };
      typescript.swigluBackward(local(gate), local(up), local(dy), attrs, out, {
        dGate: heap.floats(grads.dGate),
        dUp: heap.floats(grads.dUp),
      });
      return grads;
    },
    embeddingBackward: (ids, dy, attrs, out) => {
      const y = output(out);
      typescript.embeddingBackward(local(ids), local(dy), attrs, out, heap.floats(y));
      return y;
    },
    crossEntropy: (logits, targets, attrs, out) => {
      const outputs = { loss: output(out.loss), dLogits: output(out.dLogits) };
      typescript.crossEntropy(local(logits), local(targets), attrs, out, {
        loss: heap.floats(outputs.loss),
        dLogits: heap.floats(outputs.dLogits),
      });
      return outputs;
    },
    adamw: (param, grad, m, v, attrs) => typescript.adamw(local(param), local(grad), local(m), local(v), attrs),
  };

  return {
    name: options.flavour === 'relaxed-simd' ? 'wasm-relaxed-simd' : 'wasm-simd128',
    threads: pool.threads,
    sharedMemory: loaded.shared,
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
    free: (handle: StorageHandle) => heap.freeTensor(handle as HeapStorage),
    heapStats: () => heap.stats,
    resetHeapPeak: () => heap.resetPeak(),
    threadStats: () => pool.stats,
    dispose: () => pool.dispose(),
  };
}
