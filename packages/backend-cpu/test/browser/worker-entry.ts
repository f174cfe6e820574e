/**
 * The backend inside a module Web Worker that the page starts from /worker.js, as an app keeps
 * inference off its main thread: the backend's calling thread may block there (Atomics.wait), and
 * its own workers are nested ones. Answers the page's first message with a WorkerRun.
 */
import { setBackend } from '@diff-transformer/core';
import type { CpuBackend } from '@diff-transformer/backend-cpu';
import { matmulRun, suiteRun, type MatmulRun, type SuiteRun } from './checks.js';

export type WorkerRun = { readonly suite: SuiteRun; readonly matmul: MatmulRun } | { readonly error: string };

const scope = globalThis as unknown as { onmessage: (() => void) | null; postMessage(message: unknown): void };
scope.onmessage = () => {
  scope.onmessage = null;
  void (async () => {
    try {
      const backend = (await setBackend('cpu')) as CpuBackend;
      const suite = await suiteRun(backend);
      const matmul = await matmulRun(backend, { m: 256, k: 256, n: 256 });
      scope.postMessage({ suite, matmul } satisfies WorkerRun);
    } catch (error) {
      scope.postMessage({ error: String(error) } satisfies WorkerRun);
    }
  })();
};
