/** The page's side of the maps worker. */
import type { HostParameters, Slot } from '../engine/protocol.js';
import type { MapsRequest, MapsResponse, ModelMaps } from './protocol.js';

type Outgoing = MapsRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

export class MapsClient {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve(value: ModelMaps | null): void; reject(error: Error): void }>();
  /** The parameter version the worker holds per slot. */
  readonly #held = new Map<Slot, number>();
  #next = 1;

  constructor() {
    this.#worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'difftx-maps' });
    this.#worker.onmessage = (message: MessageEvent<MapsResponse>) => {
      const response = message.data;
      const pending = this.#pending.get(response.id);
      if (!pending) return;
      this.#pending.delete(response.id);
      if (response.type === 'result') pending.resolve(response.result);
      else pending.reject(new Error(response.message));
    };
  }

  holds(slot: Slot, version: number): boolean {
    return this.#held.get(slot) === version;
  }

  /** Hands the worker a model's parameters (their buffers move to it). */
  async setParameters(slot: Slot, parameters: HostParameters): Promise<void> {
    await this.#send(
      { type: 'parameters', slot, parameters },
      parameters.parameters.map((p) => p.data.buffer),
    );
    this.#held.set(slot, parameters.version);
  }

  async maps(slot: Slot, version: number, ids: number[]): Promise<ModelMaps> {
    return (await this.#send({ type: 'maps', slot, version, ids }))!;
  }

  #send(request: Outgoing, transfer: Transferable[] = []): Promise<ModelMaps | null> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...request, id }, transfer);
    });
  }
}
