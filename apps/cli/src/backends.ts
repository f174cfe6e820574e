/**
 * The CLI is the one place that knows every backend: importing a backend package registers it.
 * Whether a backend can run here is decided when it initialises, and `difftx info` says why not.
 */
import { createCpuBackend, type EngineName, type Isa } from '@diff-transformer/backend-cpu';
// Registers 'cuda' even without a GPU (it is then listed as unavailable, with the reason). In the bundled
// CLI the addon is found through $DIFFTX_CUDA_ADDON or packages/backend-cuda/prebuilds of this repository.
import '@diff-transformer/backend-cuda';
import '@diff-transformer/backend-webgpu';
import {
  UnknownBackendError,
  initializedBackend,
  listBackends,
  ready,
  registeredBackends,
  type Backend,
} from '@diff-transformer/core';
import { UsageError } from './errors.js';

/** The backend named on the command line, or the best available one. */
export async function resolveBackend(name: string | undefined): Promise<Backend> {
  if (name === undefined) return ready();
  if (!registeredBackends().includes(name)) {
    throw new UsageError(new UnknownBackendError(name, registeredBackends()).message);
  }
  return initializedBackend(name);
}

/**
 * A CPU backend of its own with the given engine and thread count (the registered one takes the best
 * engine and every hardware thread). The caller disposes it.
 */
export async function customCpuBackend(options: { threads?: number; engine?: string; isa?: string }): Promise<Backend> {
  if (options.engine !== undefined && !['auto', ...CPU_ENGINES].includes(options.engine)) {
    throw new UsageError(`--engine: expected auto, ${CPU_ENGINES.join(', ')}, got ${JSON.stringify(options.engine)}`);
  }
  if (options.isa !== undefined && !CPU_ISAS.includes(options.isa as Isa)) {
    throw new UsageError(`--isa: expected ${CPU_ISAS.join(', ')}, got ${JSON.stringify(options.isa)}`);
  }
  try {
    return await createCpuBackend({
      threads: options.threads,
      engine: options.engine as EngineName | undefined,
      isa: options.isa as Isa | undefined,
    });
  } catch (error) {
    // An engine this JavaScript engine cannot run (relaxed SIMD on Node 20 without its flag).
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

const CPU_ENGINES: readonly EngineName[] = ['native', 'wasm-relaxed-simd', 'wasm-simd128', 'typescript'];
const CPU_ISAS: readonly Isa[] = ['avx512', 'avx2', 'baseline'];

export { listBackends, registeredBackends };
