/**
 * A test double: a backend whose kernels are the float64 reference, storing float32. It proves the
 * runner end to end without any real backend; variants break one kernel to prove the suite notices.
 */
import type { Backend, DType, HostArray, KernelName, Kernels, TensorView } from '@diff-transformer/core';
import { reference } from '../src/index.js';
import type { RefTensor } from '../src/reference/tensor.js';

type Storage = Float32Array | Int32Array;

const view = (t: TensorView): RefTensor => reference.refTensor(t.storage as Storage, t.shape);
const store = (t: RefTensor, dtype: DType): Storage =>
  dtype === 'int32' ? Int32Array.from(t.data) : Float32Array.from(t.data);

export function naiveKernels(): Kernels {
  return {
    matmul: (a, b, attrs, out) => store(reference.matmul(view(a), view(b), attrs), out.dtype),
    embedding: (table, ids, _attrs, out) => store(reference.embedding(view(table), view(ids)), out.dtype),
    rmsNorm: (x, weight, attrs, out) => store(reference.rmsNorm(view(x), weight && view(weight), attrs), out.dtype),
    rotary: (x, cos, sin, attrs, out) => store(reference.rotary(view(x), view(cos), view(sin), attrs), out.dtype),
    swiglu: (gate, up, _attrs, out) => store(reference.swiglu(view(gate), view(up)), out.dtype),
    add: (a, b, _attrs, out) => store(reference.add(view(a), view(b)), out.dtype),
    sigmoid: (x, _attrs, out) => store(reference.sigmoid(view(x)), out.dtype),
    diffAttention: (q, k, v, lambda, weight, attrs, out) =>
      store(reference.diffAttention(view(q), view(k), view(v), view(lambda), weight && view(weight), attrs), out.dtype),
    attention: (q, k, v, attrs, out) => store(reference.attention(view(q), view(k), view(v), attrs), out.dtype),
    softmax: (x, attrs, out) => store(reference.softmax(view(x), attrs), out.dtype),
    argmax: (x, _attrs, out) => store(reference.argmax(view(x)), out.dtype),
    narrow: (x, attrs, out) => store(reference.narrow(view(x), attrs), out.dtype),
    cacheWrite: (cache, values, attrs) => {
      (cache.storage as Float32Array).set(reference.cacheWrite(view(cache), view(values), attrs).data);
    },
  };
}

export interface NaiveOptions {
  /** Kernels replaced, e.g. by a broken variant. */
  readonly overrides?: Partial<Kernels>;
  /** Kernels left out (reported as unsupported by core). */
  readonly omit?: readonly KernelName[];
  readonly dtypes?: readonly DType[];
}

export function naiveBackend(name: string, options: NaiveOptions = {}): Backend {
  const kernels: Partial<Kernels> = { ...naiveKernels(), ...options.overrides };
  for (const kernel of options.omit ?? []) delete kernels[kernel];
  return {
    name,
    device: 'float64 reference with float32 storage (test double)',
    kernels,
    dtypes: options.dtypes ?? ['float32', 'int32'],
    upload: (data: HostArray, dtype: DType) => (dtype === 'int32' ? Int32Array.from(data) : Float32Array.from(data)),
    zeros: (size: number, dtype: DType) => (dtype === 'int32' ? new Int32Array(size) : new Float32Array(size)),
    read: async (storage, _dtype, size) => (storage as Storage).slice(0, size),
    free: () => {},
  };
}
