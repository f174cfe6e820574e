/**
 * A test double that computes the way a float32 device does: every product, sum, exp and quotient is
 * rounded to float32 (Math.fround), accumulations run in order, and attention streams keys with an
 * online softmax. JavaScript's own arithmetic is float64, so a plain TypeScript backend is more precise
 * than a GPU; this one is what the float32 thresholds must leave room for.
 */
import type { Backend, DType, HostArray, KernelName, Kernels, TensorView } from '@diff-transformer/core';
import { data, f, rmsNormRow, sigmoid, size } from './float32-arithmetic.js';
import { float32TrainingKernels } from './float32-training.js';

type Storage = Float32Array | Int32Array;

export function float32Kernels(): Kernels {
  const training = float32TrainingKernels();
  return {
    ...training,
    matmul(a, b, attrs, out) {
      const [m, n] = out.shape.slice(-2);
      const k = attrs.transposeA ? a.shape[a.shape.length - 2] : a.shape[a.shape.length - 1];
      const batches = size(out.shape.slice(0, -2));
      const shared = b.shape.length === 2;
      const result = new Float32Array(size(out.shape));
      for (let batch = 0; batch < batches; batch++) {
        const ao = batch * m * k;
        const bo = shared ? 0 : batch * k * n;
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let sum = 0;
            for (let p = 0; p < k; p++) {
              const x = data(a)[ao + (attrs.transposeA ? p * m + i : i * k + p)];
              const y = data(b)[bo + (attrs.transposeB ? j * k + p : p * n + j)];
              sum = f(sum + f(x * y));
            }
            result[batch * m * n + i * n + j] = sum;
          }
        }
      }
      return result;
    },
    embedding(table, ids, _attrs, out) {
      const width = table.shape[1];
      const result = new Float32Array(size(out.shape));
      (ids.storage as Int32Array).forEach((id, i) => {
        result.set(data(table).subarray(id * width, (id + 1) * width), i * width);
      });
      return result;
    },
    rmsNorm(x, weight, attrs, out) {
      const width = x.shape[x.shape.length - 1];
      const result = Float32Array.from(data(x));
      for (let r = 0; r < result.length / width; r++)
        rmsNormRow(result.subarray(r * width, (r + 1) * width), attrs.eps, weight && data(weight), 1);
      void out;
      return result;
    },
    rotary(x, cos, sin, attrs, out) {
      const [batch, tokens, heads, width] = x.shape;
      const half = cos.shape[1];
      const result = Float32Array.from(data(x));
      for (let b = 0; b < batch; b++)
        for (let t = 0; t < tokens; t++)
          for (let h = 0; h < heads; h++) {
            const base = ((b * tokens + t) * heads + h) * width;
            const row = attrs.positionOffset + t;
            for (let j = 0; j < half; j++) {
              const i1 = base + (attrs.layout === 'interleaved' ? 2 * j : j);
              const i2 = base + (attrs.layout === 'interleaved' ? 2 * j + 1 : j + half);
              const c = data(cos)[row * half + j];
              const s = data(sin)[row * half + j];
              const a1 = data(x)[i1];
              const a2 = data(x)[i2];
              result[i1] = f(f(a1 * c) - f(a2 * s));
              result[i2] = f(f(a2 * c) + f(a1 * s));
            }
          }
      void out;
      return result;
    },
    swiglu: (gate, up) => data(gate).map((g, i) => f(f(g * sigmoid(g)) * data(up)[i])),
    add: (a, b) => data(a).map((x, i) => f(x + data(b)[i])),
    sigmoid: (x) => data(x).map(sigmoid),
    // The forward attention kernels are the ones that also save statistics, without them.
    diffAttention(q, k, v, lambda, normWeight, attrs, out) {
      const [batch, tokens, heads, dv] = out.shape;
      const statistics = {
        logSumExp: { shape: [batch, tokens, heads, 2], dtype: 'float32' as const },
        mapOutputs: { shape: [batch, tokens, heads, 2, dv], dtype: 'float32' as const },
      };
      return training.diffAttentionWithStatistics(q, k, v, lambda, normWeight, attrs, out, statistics).output;
    },
    attention(q, k, v, attrs, out) {
      const [batch, tokens, heads] = out.shape;
      const statistics = {
        logSumExp: { shape: [batch, tokens, heads, 1], dtype: 'float32' as const },
        mapOutputs: null,
      };
      return training.attentionWithStatistics(q, k, v, attrs, out, statistics).output;
    },
    softmax(x, attrs) {
      const width = x.shape[x.shape.length - 1];
      const result = data(x).map((value) => f(value / f(attrs.temperature)));
      for (let r = 0; r < result.length / width; r++) {
        const row = result.subarray(r * width, (r + 1) * width);
        const max = Math.max(...row);
        let total = 0;
        for (let j = 0; j < width; j++) {
          const e = f(Math.exp(f(row[j] - max)));
          row[j] = e;
          total = f(total + e);
        }
        for (let j = 0; j < width; j++) row[j] = f(row[j] / total);
      }
      return result;
    },
    argmax(x, _attrs, out) {
      const width = x.shape[x.shape.length - 1];
      const result = new Int32Array(size(out.shape));
      for (let r = 0; r < result.length; r++) {
        let best = 0;
        for (let j = 1; j < width; j++) if (data(x)[r * width + j] > data(x)[r * width + best]) best = j;
        result[r] = best;
      }
      return result;
    },
    narrow(x, attrs, out) {
      const outer = size(x.shape.slice(0, attrs.axis));
      const inner = size(x.shape.slice(attrs.axis + 1));
      const dim = x.shape[attrs.axis];
      const result = new Float32Array(size(out.shape));
      for (let o = 0; o < outer; o++) {
        const from = (o * dim + attrs.start) * inner;
        result.set(data(x).subarray(from, from + attrs.length * inner), o * attrs.length * inner);
      }
      return result;
    },
    cacheWrite(cache, values, attrs) {
      const [batch, capacity] = cache.shape;
      const tokens = values.shape[1];
      const row = size(cache.shape.slice(2));
      for (let b = 0; b < batch; b++) {
        data(cache).set(
          data(values).subarray(b * tokens * row, (b + 1) * tokens * row),
          (b * capacity + attrs.position) * row,
        );
      }
    },
  };
}

/**
 * Rounds a float32 value to a storage type with `bits` significant bits (11: float16, 8: bfloat16),
 * to nearest; float16 also has its narrow exponent range (subnormals below 2^−14, ∞ above 65504).
 */
function roundTo(x: number, dtype: DType): number {
  if (dtype !== 'float16' && dtype !== 'bfloat16') return x;
  if (x === 0 || !Number.isFinite(x)) return x;
  const half = dtype === 'float16';
  const exponent = Math.max(Math.floor(Math.log2(Math.abs(x))), half ? -14 : -126);
  const quantum = 2 ** (exponent - (half ? 10 : 7));
  const rounded = Math.round(x / quantum) * quantum;
  return half && Math.abs(rounded) > 65504 ? Math.sign(rounded) * Infinity : rounded;
}

const roundArray = (values: Float32Array, dtype: DType) => {
  for (let i = 0; i < values.length; i++) values[i] = roundTo(values[i], dtype);
};
type Outputs = Record<string, Float32Array | null>;
type Specs = Record<string, { dtype: DType } | null>;

/**
 * Kernels that store float16/bfloat16 the way a device does with float32 accumulation: inputs are
 * read as stored, everything is computed in float32 and each output is rounded to its dtype, the one
 * its spec names (so the saved statistics, sumSquares' and crossEntropy's loss and adamw's moments stay
 * float32, as the contract says).
 */
function storageKernels(inner: Kernels): Kernels {
  const kernels = {} as Record<string, unknown>;
  for (const [name, kernel] of Object.entries(inner) as Array<[KernelName, (...a: unknown[]) => unknown]>) {
    kernels[name] = (...args: unknown[]) => {
      const result = kernel(...args);
      const last = args[args.length - 1];
      if (name === 'cacheWrite') return result;
      if (name === 'adamw') {
        const param = args[0] as TensorView;
        roundArray(param.storage as Float32Array, param.dtype);
        return result;
      }
      if (name === 'attentionWithStatistics' || name === 'diffAttentionWithStatistics') {
        const r = result as { output: Float32Array; statistics: Outputs };
        roundArray(r.output, (args[args.length - 2] as { dtype: DType }).dtype);
        for (const [key, spec] of Object.entries(last as Specs)) if (spec) roundArray(r.statistics[key]!, spec.dtype);
        return result;
      }
      if (result instanceof Int32Array) return result;
      if (result instanceof Float32Array) {
        roundArray(result, (last as { dtype: DType }).dtype);
        return result;
      }
      // Several outputs: one spec per output, under the same keys.
      for (const [key, spec] of Object.entries(last as Specs))
        if (spec) roundArray((result as Outputs)[key]!, spec.dtype);
      return result;
    };
  }
  return kernels as unknown as Kernels;
}

export interface Float32BackendOptions {
  /**
   * Also store float16 and bfloat16: uploads and every kernel output are rounded to the storage type
   * (to nearest, float16 with its narrow exponent range), as a device that stores half precision and
   * computes in float32 does.
   */
  readonly storage?: boolean;
  /** A bug to run instead of the correct kernels (built on them; its outputs are rounded like theirs). */
  readonly mutate?: (base: Kernels) => Partial<Kernels>;
  /** Kernels left out (reported as unsupported by core). */
  readonly omit?: readonly KernelName[];
}

/** The float32 double; with `storage`, it also stores float16 and bfloat16 (rounded as above). */
export function float32Backend(name = 'float32-emulated', options: Float32BackendOptions = {}): Backend {
  const correct = float32Kernels();
  const kernels: Kernels = { ...correct, ...options.mutate?.(correct) };
  const stored: Partial<Kernels> = options.storage ? storageKernels(kernels) : { ...kernels };
  for (const kernel of options.omit ?? []) delete stored[kernel];
  return {
    name,
    device: 'float32 arithmetic emulated with Math.fround (test double)',
    kernels: stored,
    dtypes: options.storage ? ['float32', 'float16', 'bfloat16', 'int32'] : ['float32', 'int32'],
    upload: (values: HostArray, dtype: DType): Storage =>
      dtype === 'int32' ? Int32Array.from(values) : Float32Array.from(values, (x) => roundTo(x, dtype)),
    zeros: (n: number, dtype: DType): Storage => (dtype === 'int32' ? new Int32Array(n) : new Float32Array(n)),
    read: async (storage, _dtype, n) => (storage as Storage).slice(0, n),
    free: () => {},
  };
}
