/**
 * A minimal backend for core's own tests: host typed arrays and only the `add` kernel, so that the
 * tensor, scope and registry mechanics are tested without depending on a real backend package.
 */
import type { Backend, DType, HostArray, StorageHandle } from '../src/index.js';

export interface ToyBackend extends Backend {
  readonly freed: number;
  readonly live: number;
}

export function createToyBackend(name = 'toy'): ToyBackend {
  let freed = 0;
  let live = 0;
  const backend: ToyBackend = {
    name,
    device: 'toy device',
    dtypes: ['float32', 'int32'] as DType[],
    get freed() {
      return freed;
    },
    get live() {
      return live;
    },
    upload(data: HostArray): StorageHandle {
      live++;
      return data.slice();
    },
    zeros(size: number, dtype: DType): StorageHandle {
      live++;
      return dtype === 'int32' ? new Int32Array(size) : new Float32Array(size);
    },
    async read(storage: StorageHandle): Promise<HostArray> {
      return (storage as HostArray).slice();
    },
    free(): void {
      live--;
      freed++;
    },
    kernels: {
      add(a, b, _attrs, out) {
        live++;
        const x = a.storage as Float32Array;
        const y = b.storage as Float32Array;
        const z = new Float32Array(x.length);
        for (let i = 0; i < z.length; i++) z[i] = x[i] + y[i];
        void out;
        return z;
      },
    },
  };
  return backend;
}
