/**
 * The program of every worker thread. It is shipped as source text (workerSource()), so the package
 * needs no separate worker file to locate at run time, in Node or behind any bundler.
 *
 * A worker instantiates the kernel module over the shared memory, moves its stack pointer to the
 * stack the pool gave it, says it is ready, then loops: wait for the job generation to change
 * (spinning briefly first: consecutive kernels of a forward pass follow each other within
 * microseconds), run tasks of the open job until none is left, add them to the finished count.
 */

/** The first message a worker receives. */
export interface WorkerInit {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  /** Byte offset of the pool's control block (an Int32Array of `controlLength` elements). */
  readonly control: number;
  readonly controlLength: number;
  /** Byte offset of the pool's Job (c/job.h), which every task claim goes through. */
  readonly job: number;
  /** Indices into the control block. */
  readonly layout: ControlLayout;
  /** Top of this thread's stack (stacks grow down). */
  readonly stackTop: number;
  /** This thread's index, 1 … threads − 1 (the main thread is 0). */
  readonly thread: number;
  /** Checks of the generation before falling asleep on it. */
  readonly spins: number;
}

export interface ControlLayout {
  /** Bumped by the main thread to publish a job (workers wait on it). */
  readonly generation: number;
  /** Non-zero: leave the loop. */
  readonly stop: number;
  /** Tasks finished in the current job (the main thread waits on it). */
  readonly finished: number;
  /** Non-zero: a worker threw; the message follows by postMessage. */
  readonly failed: number;
}

/** What a worker posts: once { ready: true }, and { error } if a job throws. */
export type WorkerMessage = { readonly ready: true } | { readonly error: string };

/** A worker's end of the channel in Node (worker_threads' parentPort). */
interface NodePort {
  postMessage(message: unknown): void;
  once(event: 'message' | 'messageerror', handler: (message: unknown) => void): void;
}

/**
 * The worker program, self-contained: it must not refer to anything outside its own body. It is
 * shipped as its own source text, after whatever transform compiled or bundled this package, so it
 * keeps to syntax no transform rewrites into a call of a helper defined elsewhere (no async/await,
 * which a target below ES2017 turns into __async; no object spread, optional chaining or ??).
 */
function workerMain(port: NodePort | null): void {
  const scope = globalThis as unknown as {
    postMessage(message: unknown): void;
    onmessage: ((event: { data: unknown }) => void) | null;
    onmessageerror: (() => void) | null;
  };
  const post = (message: unknown): void => (port ? port.postMessage(message) : scope.postMessage(message));

  const run = (init: WorkerInit, instance: WebAssembly.Instance): void => {
    const kernels = instance.exports as unknown as {
      job_run(job: number, thread: number): number;
      __stack_pointer: WebAssembly.Global;
    };
    kernels.__stack_pointer.value = init.stackTop;
    const control = new Int32Array(init.memory.buffer, init.control, init.controlLength);
    const { generation, stop, finished, failed } = init.layout;
    let seen = Atomics.load(control, generation);
    post({ ready: true });
    for (;;) {
      for (let i = 0; Atomics.load(control, generation) === seen; i++) {
        if (i >= init.spins) Atomics.wait(control, generation, seen);
      }
      seen = Atomics.load(control, generation);
      if (Atomics.load(control, stop) !== 0) return;
      let ran: number;
      try {
        ran = kernels.job_run(init.job, init.thread);
      } catch (error) {
        // The main thread cannot wait for tasks this thread abandoned: tell it, then stop.
        Atomics.store(control, failed, 1);
        Atomics.notify(control, finished);
        post({ error: String(error) });
        return;
      }
      if (ran > 0) {
        Atomics.add(control, finished, ran);
        Atomics.notify(control, finished);
      }
    }
  };
  const start = (message: unknown): Promise<void> => {
    const init = message as WorkerInit;
    return WebAssembly.instantiate(init.module, { env: { memory: init.memory } }).then((instance) =>
      run(init, instance),
    );
  };

  // A failure before the loop (instantiating the module, say) must reach the pool as a message: in a
  // browser an unhandled rejection in a worker fires no 'error' event at its Worker object, and the
  // pool would wait for { ready } forever.
  const begin = (message: unknown): void => {
    start(message).catch((error: unknown) => post({ error: `worker thread failed: ${String(error)}` }));
  };
  const unreadable = (): void =>
    post({ error: 'worker thread could not receive the kernel module and memory (messageerror)' });

  if (port) {
    port.once('message', begin);
    port.once('messageerror', unreadable);
  } else {
    scope.onmessage = (event) => {
      scope.onmessage = null;
      begin(event.data);
    };
    scope.onmessageerror = unreadable;
  }
}

/**
 * The worker script. `__name` is defined because some TypeScript transforms (esbuild's keepNames)
 * wrap named functions in calls to it. Node's port comes from a dynamic import, which works whether
 * Node evaluates the script as CommonJS or as a module (it inherits --input-type=module).
 */
export function workerSource(): string {
  return [
    '"use strict";',
    'var __name = (f) => f;',
    '(async () => {',
    "  const node = typeof process === 'object' && typeof process.versions?.node === 'string';",
    "  const port = node ? (await import('node:worker_threads')).parentPort : null;",
    `  (${workerMain.toString()})(port);`,
    '})();',
    '',
  ].join('\n');
}
