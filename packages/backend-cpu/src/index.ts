/**
 * @diff-transformer/backend-cpu — every kernel of the diff-transformer contract on the CPU: matmul
 * and streaming (differential) attention in WebAssembly SIMD across threads, the rest in TypeScript
 * on the same memory, and an all-TypeScript engine where WebAssembly SIMD is missing. Importing the
 * package registers the backend as 'cpu'.
 */
import { registerBackend } from '@diff-transformer/core';
import { createCpuBackend } from './backend.js';

export {
  createCpuBackend,
  type CpuBackend,
  type CpuBackendOptions,
  type EngineName,
  type HeapStats,
  type Isa,
  type ThreadStats,
} from './backend.js';

/** Priority of the CPU backend in `ready()`: below webgpu (200) and cuda (300), so it is the fallback. */
const CPU_PRIORITY = 100;

/** Registers the backend with core as 'cpu'. Runs once on import; calling it again is harmless. */
export function register(): void {
  registerBackend('cpu', () => createCpuBackend(), CPU_PRIORITY);
}

register();
