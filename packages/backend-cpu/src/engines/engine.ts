/**
 * An engine is where the CPU backend's tensors live and which code runs its kernels. The backend
 * (../backend.ts) picks one when it is created and adds what is common: live-storage counting and
 * the Backend object core sees.
 */
import type { GuardViolation, HostArray, Kernels, StorageHandle } from '@diff-transformer/core';
import type { HeapStats } from '../heap/heap.js';
import type { CpuDType } from '../storage.js';
import type { ThreadStats } from '../threads/pool.js';

/** The engines, best first: native (Node), WebAssembly with relaxed SIMD, with SIMD128, plain TypeScript. */
export const ENGINES = ['native', 'wasm-relaxed-simd', 'wasm-simd128', 'typescript'] as const;
export type EngineName = (typeof ENGINES)[number];

export interface Engine {
  readonly name: EngineName;
  /** What the description adds after the engine's name (the native engine's instruction set), or ''. */
  readonly detail: string;
  /** Threads that run kernels, the calling thread included. */
  readonly threads: number;
  /** Whether the heap is a shared memory (worker threads need one). */
  readonly sharedMemory: boolean;
  /** Every kernel of the contract. */
  readonly kernels: Kernels;
  /** A copy of `data` as a new storage. */
  upload(data: HostArray, dtype: CpuDType): StorageHandle;
  /** A new zero-filled storage. */
  zeros(size: number, dtype: CpuDType): StorageHandle;
  /** A copy of the first `size` elements, as a host array the caller owns. */
  read(storage: StorageHandle, size: number): HostArray;
  free(storage: StorageHandle): void;
  /** The WebAssembly heap's use, or null for an engine without one. */
  heapStats(): HeapStats | null;
  /** Starts a new peak measurement of the heap (no-op without one). */
  resetHeapPeak(): void;
  /** What ran in parallel so far (all zero without a thread pool). */
  threadStats(): ThreadStats;
  /** Stops worker threads; the engine must not be used afterwards. */
  dispose(): void;
  /** Guard mode (core's BackendGuards), checked synchronously: kernels have all returned when it runs. */
  readonly guards: EngineGuards;
}

export interface EngineGuards {
  enable(on: boolean): void;
  readonly enabled: boolean;
  check(): GuardViolation[];
}
