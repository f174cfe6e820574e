/**
 * The WebAssembly engine: the C kernels compiled to WebAssembly SIMD (../wasm/loader.ts), a heap in
 * one WebAssembly.Memory (shared with the worker threads where memory can be shared), and the pool of
 * worker threads that run the kernels' jobs (../threads/pool.ts). What it shares with the native
 * engine, the kernel table over the heap, is ../c-kernels/engine.ts.
 */
import { cKernelEngine } from '../c-kernels/engine.js';
import { KernelHeap } from '../heap/heap.js';
import { ThreadPool } from '../threads/pool.js';
import { loadKernels, type SimdFlavour } from '../wasm/loader.js';
import type { Engine } from './engine.js';

export interface WebAssemblyEngineOptions {
  readonly flavour: SimdFlavour;
  /** Threads that run kernels, the calling thread included. */
  readonly threads: number;
  /** Whether the memory may be shared with worker threads (false: one thread). */
  readonly shared: boolean;
}

export async function createWebAssemblyEngine(
  options: WebAssemblyEngineOptions,
): Promise<Engine & { readonly heap: KernelHeap }> {
  const loaded = await loadKernels(options.flavour, options.shared);
  const heap = new KernelHeap(loaded.memory, loaded.exports.__heap_base.value as number, loaded.maximumBytes);
  const pool = await ThreadPool.start(loaded, heap, options.threads);
  return cKernelEngine({
    name: options.flavour === 'relaxed-simd' ? 'wasm-relaxed-simd' : 'wasm-simd128',
    detail: '',
    heap,
    pool,
    exports: loaded.exports,
    sharedMemory: loaded.shared,
    threadStats: () => pool.stats,
    dispose: () => pool.dispose(),
  });
}
