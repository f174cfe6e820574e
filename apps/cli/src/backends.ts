/**
 * The CLI is the one place that knows every backend: importing a backend package registers it.
 * Whether a backend can run here is decided when it initialises, and `difftx info` says why not.
 */
import { createCpuBackend } from '@diff-transformer/backend-cpu';
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

/**
 * A CPU backend of its own with `threads` threads (the registered one uses every hardware thread).
 * The caller disposes it.
 */
export function cpuBackendWithThreads(threads: number): Promise<Backend> {
  return createCpuBackend({ threads });
}

export { listBackends, registeredBackends };
