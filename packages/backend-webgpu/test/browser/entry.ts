/**
 * The page side of the browser test: core, the conformance suite and this backend bundled for the
 * browser, where the backend finds WebGPU through navigator.gpu. The test calls window.runSuite().
 */
import { runConformance, type ConformanceReport } from '@diff-transformer/conformance';
import { initializedBackend, listBackends, type Kernels } from '@diff-transformer/core';
import '@diff-transformer/backend-webgpu';

export interface SuiteOptions {
  /** A regular expression over case names. */
  readonly filter?: string;
  /** Replaces add(a, b) by add(a, a): proves that a wrong kernel fails its cases in the page. */
  readonly breakAdd?: boolean;
}

declare global {
  interface Window {
    runSuite(options: SuiteOptions): Promise<ConformanceReport | { unavailable: string }>;
  }
}

window.runSuite = async (options) => {
  const info = (await listBackends()).find((b) => b.name === 'webgpu');
  if (!info?.available) return { unavailable: info?.reason ?? 'webgpu is not registered' };
  const backend = await initializedBackend('webgpu');
  const kernels = backend.kernels as Kernels;
  const add = kernels.add;
  if (options.breakAdd) kernels.add = (a, _b, attrs, out) => add(a, a, attrs, out);
  try {
    return await runConformance(backend, { filter: options.filter ? new RegExp(options.filter) : undefined });
  } finally {
    kernels.add = add;
  }
};
