/**
 * The page side of the browser test: core, the conformance suite and this backend bundled for the
 * browser, as an app gets them. Importing the backend registers it as 'cpu' with its defaults
 * (threads: navigator.hardwareConcurrency, memory shared where the page is cross-origin isolated).
 * The test calls the window.cpu* functions below.
 */
import { ops, setBackend, tensor } from '@diff-transformer/core';
import { createCpuBackend, type CpuBackend } from '@diff-transformer/backend-cpu';
import { matmulRun, suiteRun, type MatmulOptions, type MatmulRun, type SuiteRun } from './checks.js';
import type { WorkerRun } from './worker-entry.js';

/** A backend whose workers fail while they start. */
export type BrokenWorkersRun =
  | { readonly hung: true }
  | { readonly device: string; readonly threads: number; readonly product: number[] };

declare global {
  interface Window {
    /** The whole conformance suite on the registered 'cpu' backend. */
    cpuSuite(): Promise<SuiteRun>;
    /** A matmul on the registered backend, or on one of its own with `threads`. */
    cpuMatmul(options: MatmulOptions): Promise<MatmulRun>;
    /** The suite and a 256³ matmul in a module Web Worker started from /worker.js. */
    cpuInWorker(): Promise<WorkerRun>;
    cpuBrokenWorkers(): Promise<BrokenWorkersRun>;
  }
}

window.cpuSuite = async () => suiteRun((await setBackend('cpu')) as CpuBackend);

window.cpuMatmul = async (options) => {
  if (!options.threads) return matmulRun((await setBackend('cpu')) as CpuBackend, options);
  const backend = await createCpuBackend({ threads: options.threads });
  try {
    return await matmulRun(backend, options);
  } finally {
    backend.dispose();
  }
};

window.cpuInWorker = () =>
  new Promise<WorkerRun>((resolve) => {
    const worker = new Worker('/worker.js', { type: 'module' });
    const done = (run: WorkerRun): void => {
      worker.terminate();
      resolve(run);
    };
    worker.onmessage = (event: MessageEvent<WorkerRun>) => done(event.data);
    worker.onerror = (event) => done({ error: `the worker failed: ${event.message || 'its script did not load'}` });
    worker.postMessage('run');
  });

/**
 * Hands each new worker a shared memory too small for the kernel module (no page at all: the module
 * asks for at least its stack's), so that instantiating it fails inside the worker: the backend must
 * notice, warn and run on the page's thread (not wait for the worker forever).
 */
window.cpuBrokenWorkers = async () => {
  const post = Worker.prototype.postMessage;
  Worker.prototype.postMessage = function (this: Worker, message: unknown, ...rest: unknown[]) {
    const small = new WebAssembly.Memory({ initial: 0, maximum: 1, shared: true });
    return (post as (this: Worker, ...args: unknown[]) => void).call(
      this,
      { ...(message as object), memory: small },
      ...rest,
    );
  };
  try {
    const created = createCpuBackend({ threads: 2 });
    const backend = await Promise.race([
      created,
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 10_000)),
    ]);
    if (!backend) {
      void created.then((late) => late.dispose());
      return { hung: true };
    }
    const a = tensor([1, 2, 3, 4], [2, 2], { backend });
    const product = Array.from(await ops.matmul(a, a).data());
    backend.dispose();
    return { device: backend.device, threads: backend.threads, product };
  } finally {
    Worker.prototype.postMessage = post;
  }
};
