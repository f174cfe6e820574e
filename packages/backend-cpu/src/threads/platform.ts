/**
 * What the JavaScript environment offers for threads: worker_threads in Node, Web Workers with
 * SharedArrayBuffer in cross-origin-isolated pages, nothing elsewhere. Node modules are imported
 * through a variable so that browser bundlers leave them alone.
 */

const inNode = typeof process === 'object' && typeof process.versions?.node === 'string';

/** A worker thread, whichever kind. */
export interface WorkerThread {
  postMessage(message: unknown): void;
  /** Calls `handler` with each message the worker posts. */
  onMessage(handler: (message: unknown) => void): void;
  /** Calls `handler` when the worker fails to start, throws, or (Node) exits. */
  onError(handler: (error: unknown) => void): void;
  terminate(): void;
  /** Lets Node exit while the worker idles (a no-op in browsers). Adding listeners undoes it in Node. */
  unref(): void;
}

/** Hardware threads of this machine (logical cores). */
export async function hardwareThreads(): Promise<number> {
  if (inNode) {
    const os = (await importNode('node:os')) as typeof import('node:os');
    return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  }
  return Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1);
}

/** Whether a WebAssembly memory can be shared with workers here. */
export function canShareMemory(): boolean {
  if (typeof SharedArrayBuffer !== 'function') return false;
  return inNode || globalThis.crossOriginIsolated === true;
}

/** Whether this thread may block in Atomics.wait (not a browser's main thread). */
export function canBlock(): boolean {
  if (typeof SharedArrayBuffer !== 'function') return false;
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts a worker running `source` (a script). In Node the script sees `require`; in a browser it
 * runs from a blob URL.
 */
export async function spawnWorker(source: string): Promise<WorkerThread> {
  if (inNode) {
    const { Worker } = (await importNode('node:worker_threads')) as typeof import('node:worker_threads');
    const worker = new Worker(source, { eval: true });
    return {
      postMessage: (message) => worker.postMessage(message),
      onMessage: (handler) => worker.on('message', handler),
      onError: (handler) => {
        worker.on('error', handler);
        worker.on('exit', (code) => handler(new Error(`worker exited with code ${code}`)));
      },
      terminate: () => void worker.terminate(),
      unref: () => worker.unref(),
    };
  }
  const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
  const worker = new Worker(url);
  return {
    postMessage: (message) => worker.postMessage(message),
    onMessage: (handler) =>
      worker.addEventListener('message', (event) => {
        URL.revokeObjectURL(url);
        handler(event.data);
      }),
    onError: (handler) => {
      worker.addEventListener('error', (event) => handler(workerError(event)));
      worker.addEventListener('messageerror', () =>
        handler(new Error('a message from a worker thread could not be received')),
      );
    },
    terminate: () => worker.terminate(),
    unref: () => {},
  };
}

/**
 * What a Worker's 'error' event says: an ErrorEvent for an exception in the worker; a plain Event,
 * with no message at all, when the script could not be loaded (mostly a Content-Security-Policy
 * that does not allow blob: workers).
 */
function workerError(event: Event): Error {
  const { error, message } = event as Partial<ErrorEvent>;
  if (error instanceof Error) return error;
  if (message) return new Error(message);
  return new Error(
    "the worker script did not load (does the page's Content-Security-Policy allow blob: in worker-src?)",
  );
}

function importNode(specifier: string): Promise<unknown> {
  return import(/* webpackIgnore: true */ /* @vite-ignore */ specifier);
}
