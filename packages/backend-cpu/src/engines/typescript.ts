/**
 * The TypeScript engine: tensors are plain typed arrays (the handle is the array itself) and every
 * kernel is the scalar code of ../kernels, on the calling thread. It needs nothing but JavaScript,
 * so it runs where WebAssembly SIMD does not, and it is the reference the WebAssembly engine is
 * tested against.
 */
import type { DType, HostArray, Kernels, OutputSpec, StorageHandle } from '@diff-transformer/core';
import { sizeOf } from '@diff-transformer/core';
import * as kernels from '../kernels/index.js';
import type { CpuDType, CpuStorage } from '../storage.js';
import { GUARD_WORDS, Guards } from '../guards.js';
import { allocate as allocateArray, assertStorable } from '../storage.js';
import type { Engine } from './engine.js';

export function createTypeScriptEngine(): Engine {
  const guards = new Guards<CpuStorage>();
  /**
   * A zero-filled array; in guard mode a view into a larger buffer with canaries on both sides (a
   * typed array drops writes past its own end, so only a write through its buffer can reach them).
   */
  const allocate = (dtype: DType, size: number): CpuStorage => {
    if (!guards.enabled) return allocateArray(dtype, size);
    assertStorable(dtype);
    const buffer = new ArrayBuffer(4 * (size + 2 * GUARD_WORDS));
    const array =
      dtype === 'int32'
        ? new Int32Array(buffer, 4 * GUARD_WORDS, size)
        : new Float32Array(buffer, 4 * GUARD_WORDS, size);
    guards.add(array, { size, dtype, words: () => new Int32Array(buffer), release: () => {} });
    return array;
  };
  const output = (out: OutputSpec): CpuStorage => allocate(out.dtype, sizeOf(out.shape));
  const floatOutput = (out: OutputSpec): Float32Array => output(out) as Float32Array;

  const table: Kernels = {
    matmul: (a, b, attrs, out) => {
      const y = floatOutput(out);
      kernels.matmul(a, b, attrs, out, y);
      return y;
    },
    embedding: (table, ids, attrs, out) => {
      const y = floatOutput(out);
      kernels.embedding(table, ids, attrs, out, y);
      return y;
    },
    rmsNorm: (x, weight, attrs, out) => {
      const y = floatOutput(out);
      kernels.rmsNorm(x, weight, attrs, out, y);
      return y;
    },
    rotary: (x, cos, sin, attrs, out) => {
      const y = floatOutput(out);
      kernels.rotary(x, cos, sin, attrs, out, y);
      return y;
    },
    swiglu: (gate, up, attrs, out) => {
      const y = floatOutput(out);
      kernels.swiglu(gate, up, attrs, out, y);
      return y;
    },
    add: (a, b, attrs, out) => {
      const y = floatOutput(out);
      kernels.add(a, b, attrs, out, y);
      return y;
    },
    sigmoid: (x, attrs, out) => {
      const y = floatOutput(out);
      kernels.sigmoid(x, attrs, out, y);
      return y;
    },
    diffAttention: (q, k, v, lambda, normWeight, attrs, out) => {
      const y = floatOutput(out);
      kernels.diffAttention(q, k, v, lambda, normWeight, attrs, out, y);
      return y;
    },
    attention: (q, k, v, attrs, out) => {
      const y = floatOutput(out);
      kernels.attention(q, k, v, attrs, out, y);
      return y;
    },
    softmax: (x, attrs, out) => {
      const y = floatOutput(out);
      kernels.softmax(x, attrs, out, y);
      return y;
    },
    argmax: (x, attrs, out) => {
      const y = output(out) as Int32Array;
      kernels.argmax(x, attrs, out, y);
      return y;
    },
    narrow: (x, attrs, out) => {
      const y = output(out);
      kernels.narrow(x, attrs, out, y);
      return y;
    },
    cacheWrite: kernels.cacheWrite,
    exp: (x, attrs, out) => {
      const y = floatOutput(out);
      kernels.exp(x, attrs, out, y);
      return y;
    },
    mul: (a, b, attrs, out) => {
      const y = floatOutput(out);
      kernels.mul(a, b, attrs, out, y);
      return y;
    },
    scale: (x, attrs, out) => {
      const y = floatOutput(out);
      kernels.scale(x, attrs, out, y);
      return y;
    },
    sumSquares: (x, attrs, out) => {
      const y = floatOutput(out);
      kernels.sumSquares(x, attrs, out, y);
      return y;
    },
    diffAttentionWithStatistics: (q, k, v, lambda, normWeight, attrs, out, statistics) => {
      const y = floatOutput(out);
      const logSumExp = floatOutput(statistics.logSumExp);
      // Core always asks differential attention for its map outputs.
      const mapOutputs = floatOutput(statistics.mapOutputs!);
      kernels.diffAttention(q, k, v, lambda, normWeight, attrs, out, y, { logSumExp, mapOutputs });
      return { output: y, statistics: { logSumExp, mapOutputs } };
    },
    attentionWithStatistics: (q, k, v, attrs, out, statistics) => {
      const y = floatOutput(out);
      const logSumExp = floatOutput(statistics.logSumExp);
      kernels.attention(q, k, v, attrs, out, y, logSumExp);
      return { output: y, statistics: { logSumExp, mapOutputs: null } };
    },
    diffAttentionBackward: (q, k, v, lambda, normWeight, statistics, dOut, attrs, out) => {
      const grads = {
        dq: floatOutput(out.dq),
        dk: floatOutput(out.dk),
        dv: floatOutput(out.dv),
        dLambda: floatOutput(out.dLambda),
        dNormWeight: out.dNormWeight && floatOutput(out.dNormWeight),
      };
      kernels.diffAttentionBackward(q, k, v, lambda, normWeight, statistics, dOut, attrs, out, grads);
      return grads;
    },
    attentionBackward: (q, k, v, output, statistics, dOut, attrs, out) => {
      const grads = { dq: floatOutput(out.dq), dk: floatOutput(out.dk), dv: floatOutput(out.dv) };
      kernels.attentionBackward(q, k, v, output, statistics, dOut, attrs, out, grads);
      return grads;
    },
    rmsNormBackward: (x, weight, dy, attrs, out) => {
      const grads = { dx: floatOutput(out.dx), dWeight: out.dWeight && floatOutput(out.dWeight) };
      kernels.rmsNormBackward(x, weight, dy, attrs, out, grads);
      return grads;
    },
    swigluBackward: (gate, up, dy, attrs, out) => {
      const grads = { dGate: floatOutput(out.dGate), dUp: floatOutput(out.dUp) };
      kernels.swigluBackward(gate, up, dy, attrs, out, grads);
      return grads;
    },
    embeddingBackward: (ids, dy, attrs, out) => {
      const y = floatOutput(out);
      kernels.embeddingBackward(ids, dy, attrs, out, y);
      return y;
    },
    crossEntropy: (logits, targets, attrs, out) => {
      const outputs = { loss: floatOutput(out.loss), dLogits: floatOutput(out.dLogits) };
      kernels.crossEntropy(logits, targets, attrs, out, outputs);
      return outputs;
    },
    adamw: kernels.adamw,
  };

  return {
    name: 'typescript',
    detail: '',
    threads: 1,
    sharedMemory: false,
    kernels: table,
    // Always a copy: the caller keeps ownership of its array and may change it afterwards.
    upload: (data: HostArray, dtype: CpuDType) => {
      const array = allocate(dtype, data.length);
      array.set(data);
      return array;
    },
    zeros: (size: number, dtype: CpuDType) => allocate(dtype, size),
    // A copy, so that the caller cannot write into a live tensor through what it was given.
    read: (storage: StorageHandle, size: number) => (storage as CpuStorage).slice(0, size),
    // Kernels run synchronously, so no queued work can still need the array: the garbage collector
    // reclaims it once core drops its handle (a guarded one once the next check has seen it).
    free: (storage: StorageHandle) => {
      guards.free(storage as CpuStorage);
    },
    heapStats: () => null,
    resetHeapPeak: () => {},
    threadStats: () => ({ parallelPhases: 0, tasks: 0, workerTasks: 0 }),
    dispose: () => {},
    guards,
  };
}
