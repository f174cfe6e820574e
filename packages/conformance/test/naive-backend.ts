/**
 * A test double: a backend whose kernels are the float64 reference, storing float32. It proves the
 * runner end to end without any real backend; variants break one kernel to prove the suite notices.
 */
import type { Backend, DType, HostArray, KernelName, Kernels, TensorView } from '@diff-transformer/core';
import { reference } from '../src/index.js';
import type { RefTensor } from '@diff-transformer/reference';

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
    exp: (x, _attrs, out) => store(reference.exp(view(x)), out.dtype),
    mul: (a, b, _attrs, out) => store(reference.mul(view(a), view(b)), out.dtype),
    scale: (x, attrs, out) => store(reference.scale(view(x), attrs), out.dtype),
    sumSquares: (x, _attrs, out) => store(reference.sumSquares(view(x)), out.dtype),
    diffAttentionWithStatistics: (q, k, v, lambda, weight, attrs, out, statistics) => {
      const r = reference.diffAttentionWithStatistics(
        view(q),
        view(k),
        view(v),
        view(lambda),
        weight && view(weight),
        attrs,
      );
      return {
        output: store(r.output, out.dtype),
        statistics: {
          logSumExp: store(r.logSumExp, statistics.logSumExp.dtype),
          mapOutputs: store(r.mapOutputs, 'float32'),
        },
      };
    },
    attentionWithStatistics: (q, k, v, attrs, out, statistics) => {
      const r = reference.attentionWithStatistics(view(q), view(k), view(v), attrs);
      return {
        output: store(r.output, out.dtype),
        statistics: { logSumExp: store(r.logSumExp, statistics.logSumExp.dtype), mapOutputs: null },
      };
    },
    diffAttentionBackward: (q, k, v, lambda, weight, _statistics, dOut, attrs, out) => {
      const g = reference.diffAttentionBackward(
        view(q),
        view(k),
        view(v),
        view(lambda),
        weight && view(weight),
        view(dOut),
        attrs,
      );
      return {
        dq: store(g.dq, out.dq.dtype),
        dk: store(g.dk, out.dk.dtype),
        dv: store(g.dv, out.dv.dtype),
        dLambda: store(g.dLambda, out.dLambda.dtype),
        dNormWeight: g.dNormWeight && store(g.dNormWeight, 'float32'),
      };
    },
    attentionBackward: (q, k, v, _output, _statistics, dOut, attrs, out) => {
      const g = reference.attentionBackward(view(q), view(k), view(v), view(dOut), attrs);
      return { dq: store(g.dq, out.dq.dtype), dk: store(g.dk, out.dk.dtype), dv: store(g.dv, out.dv.dtype) };
    },
    rmsNormBackward: (x, weight, dy, attrs, out) => {
      const g = reference.rmsNormBackward(view(x), weight && view(weight), view(dy), attrs);
      return { dx: store(g.dx, out.dx.dtype), dWeight: g.dWeight && store(g.dWeight, 'float32') };
    },
    swigluBackward: (gate, up, dy, _attrs, out) => {
      const g = reference.swigluBackward(view(gate), view(up), view(dy));
      return { dGate: store(g.dGate, out.dGate.dtype), dUp: store(g.dUp, out.dUp.dtype) };
    },
    embeddingBackward: (ids, dy, attrs, out) =>
      store(reference.embeddingBackward(view(ids), view(dy), attrs.vocabSize), out.dtype),
    crossEntropy: (logits, targets, attrs, out) => {
      const r = reference.crossEntropy(view(logits), view(targets), attrs);
      return { loss: store(r.loss, 'float32'), dLogits: store(r.dLogits, out.dLogits.dtype) };
    },
    adamw: (param, grad, m, v, attrs) => {
      const r = reference.adamw(view(param), view(grad), view(m), view(v), attrs);
      (param.storage as Float32Array).set(r.param.data);
      (m.storage as Float32Array).set(r.m.data);
      (v.storage as Float32Array).set(r.v.data);
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
