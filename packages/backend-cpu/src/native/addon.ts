/** What the native addon (../../native/addon.cc) exports. */
import type { KernelExports } from '../wasm/exports.js';

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

/** The kernel entry points take byte offsets into `buffer`, as the WebAssembly module's do. */
export interface NativeEngineHandle extends Omit<KernelExports, '__heap_base' | '__stack_pointer'> {
  /** The whole heap: address space reserved once, committed by the system page by page when touched. */
  readonly buffer: ArrayBuffer;
  /** The first offset the heap may hand out (offset 0 means "none"). */
  readonly heapBase: number;
  readonly maximumBytes: number;
  readonly threads: number;
  /** Bytes of the configured matmul's B packed for the micro-kernel (native/matmul.c). */
  matmul_packed_b_bytes(): number;
  /** Prepares packing the configured matmul's B into `packed`; returns the task count. */
  matmul_pack_b_prepare(b: number, packed: number): number;
  /** Prepares the configured matmul with B already packed (it needs no scratch). */
  matmul_prepare_packed(a: number, packedB: number, c: number): number;
  /** Runs a prepared job to its end on the pool (every phase); `parallel` false: on the calling thread. */
  run(tasks: number, parallel: boolean): void;
  stats(): { parallelPhases: number; tasks: number; workerTasks: number };
  /** Stops the pool's threads; the memory stays until the buffer is collected. */
  dispose(): void;
}
