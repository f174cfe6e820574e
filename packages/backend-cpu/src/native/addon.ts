/** What the native addon (../../native/addon.cc) exports. */
import type { NativeEntryPoints } from '../c-kernels/entry-points.js';

export interface NativeAddon {
  /** The instruction set it was built for, and what this CPU supports (CPUID; x64 only). */
  cpu(): {
    isa: string;
    avx2?: boolean;
    fma?: boolean;
    avx512f?: boolean;
    avx512bw?: boolean;
    avx512dq?: boolean;
    avx512vl?: boolean;
  };
  /** A heap of native memory and a pool of `threads` threads (the calling one included). */
  createEngine(threads: number): NativeEngineHandle;
}

/**
 * An engine's heap and pool, and every entry point of ../c-kernels/entry-points.ts bound to the heap:
 * they take byte offsets into `buffer`, as the WebAssembly module's do.
 */
export interface NativeEngineHandle extends NativeEntryPoints {
  /** The whole heap: address space reserved once, committed by the system page by page when touched. */
  readonly buffer: ArrayBuffer;
  /** The first offset the heap may hand out (offset 0 means "none"). */
  readonly heapBase: number;
  readonly maximumBytes: number;
  readonly threads: number;
  /**
   * Runs the job prepared in `job` (a heap block of job_bytes() bytes) to its end on the pool, every
   * phase; `parallel` false: on the calling thread.
   */
  run(job: number, tasks: number, parallel: boolean): void;
  stats(): { parallelPhases: number; tasks: number; workerTasks: number };
  /** Stops the pool's threads; the memory stays until the buffer is collected. */
  dispose(): void;
}
