/**
 * The CLI is the one place that knows every backend: importing a backend package registers it.
 * Whether a backend can run here is decided when it initialises, and `difftx info` says why not.
 */
import '@diff-transformer/backend-cpu';
// Registers 'cuda' even without a GPU (it is then listed as unavailable, with the reason). In the bundled
// CLI the addon is found through $DIFFTX_CUDA_ADDON or packages/backend-cuda/prebuilds of this repository.
import '@diff-transformer/backend-cuda';
import '@diff-transformer/backend-webgpu';
import { UnknownBackendError, initializedBackend, listBackends, ready, registeredBackends, type Backend } from '@diff-transformer/core';
import { UsageError } from './errors.js';

/** The backend named on the command line, or the best available one. */
export async function resolveBackend(name: string | undefined): Promise<Backend> {
  if (name === undefined) return ready();
  if (!registeredBackends().includes(name)) {
    throw new UsageError(new UnknownBackendError(name, registeredBackends()).message);
  }
  return initializedBackend(name);
}

export { listBackends, registeredBackends };
