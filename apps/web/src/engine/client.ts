/** The page's side of the engine worker: one promise per call, with the events it streams. */
import type { EngineEvent, EngineMethods, Method, Request, Response } from './protocol.js';

/** An error the engine threw, with the name of its class (CheckpointConfigError, UnsupportedKernelError, …). */
export class EngineError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

export class EngineClient {
  readonly #worker: Worker;
  readonly #pending = new Map<
    number,
    { resolve(value: unknown): void; reject(error: Error): void; onEvent?: (event: EngineEvent) => void }
  >();
  #next = 1;

  constructor() {
    this.#worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'difftx-engine' });
    this.#worker.onmessage = (message: MessageEvent<Response>) => {
      const response = message.data;
      const pending = this.#pending.get(response.id);
      if (!pending) return;
      if (response.type === 'event') {
        pending.onEvent?.(response.event);
        return;
      }
      this.#pending.delete(response.id);
      if (response.type === 'result') pending.resolve(response.result);
      else pending.reject(new EngineError(response.error.name, response.error.message));
    };
    this.#worker.onerror = (event) => {
      const error = new EngineError('EngineWorkerError', `the engine worker failed: ${event.message}`);
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
    };
  }

  call<M extends Method>(
    method: M,
    args: EngineMethods[M]['args'],
    onEvent?: (event: EngineEvent) => void,
  ): Promise<EngineMethods[M]['result']> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject, onEvent });
      this.#worker.postMessage({ id, method, args } satisfies Request<M>);
    });
  }
}
