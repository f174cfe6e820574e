/**
 * The page side of the browser test: core, both browser backends and the trainer bundled from their
 * built dist/, as an app gets them. The test calls window.trainInPage(name).
 */
import { initializedBackend, listBackends, UnsupportedKernelError } from '@diff-transformer/core';
import '@diff-transformer/backend-cpu';
import '@diff-transformer/backend-webgpu';
import { type PageRun, trainLosses } from './run.js';

export type PageResult = PageRun | { readonly unavailable: string } | { readonly unsupported: string };

declare global {
  interface Window {
    trainInPage(backend: string): Promise<PageResult>;
  }
}

window.trainInPage = async (name) => {
  const info = (await listBackends()).find((b) => b.name === name);
  if (!info?.available) return { unavailable: info?.reason ?? `${name} is not registered` };
  try {
    return await trainLosses(await initializedBackend(name));
  } catch (error) {
    // A kernel the backend does not have yet is reported, not worked around.
    if (error instanceof UnsupportedKernelError) return { unsupported: error.message };
    throw error;
  }
};
