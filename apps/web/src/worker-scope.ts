/** What a dedicated worker uses of its global scope (the DOM library types the page's, not a worker's). */
export interface WorkerScope {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent) => void) | null;
}

export const workerScope = self as unknown as WorkerScope;
