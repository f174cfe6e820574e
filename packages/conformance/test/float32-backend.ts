/**
 * A test double that computes the way a float32 device does: every product, sum, exp and quotient is
 * rounded to float32 (Math.fround), accumulations run in order, and attention streams keys with an
 * online softmax. JavaScript's own arithmetic is float64, so a plain TypeScript backend is more precise
 * than a GPU; this one is what the float32 thresholds must leave room for.
 */
import type {
  Backend,
  DType,
  HostArray,
  InferenceKernels,
  KernelName,
  Kernels,
  TensorView,
} from '@diff-transformer/core';

const f = Math.fround;
type Storage = Float32Array | Int32Array;
const data = (t: TensorView) => t.storage as Float32Array;
const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function dot(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, n: number): number {
  let sum = 0;
  for (let j = 0; j < n; j++) sum = f(sum + f(a[aOffset + j] * b[bOffset + j]));
  return sum;
}

const sigmoid = (x: number) => f(1 / f(1 + f(Math.exp(-x))));

/** One query against keys [0, visible) with a streaming softmax: returns the unnormalised sum and l. */
function streamKeys(
  q: Float32Array,
  qOffset: number,
  k: Float32Array,
  keyOffsetOf: (s: number) => number,
  v: Float32Array,
  valueOffsetOf: (s: number) => number,
  dk: number,
  dv: number,
  visible: number,
  scale: number,
): Float32Array {
  let max = -Infinity;
  let total = 0;
  const acc = new Float32Array(dv);
  for (let s = 0; s < visible; s++) {
    const score = f(scale * dot(q, qOffset, k, keyOffsetOf(s), dk));
    const next = Math.max(max, score);
    const correction = f(Math.exp(f(max - next)));
    const p = f(Math.exp(f(score - next)));
    total = f(f(total * correction) + p);
    const vo = valueOffsetOf(s);
    for (let j = 0; j < dv; j++) acc[j] = f(f(acc[j] * correction) + f(p * v[vo + j]));
    max = next;
  }
  for (let j = 0; j < dv; j++) acc[j] = f(acc[j] / total);
  return acc;
}

function rmsNormRow(row: Float32Array, eps: number, weight: Float32Array | null, scale: number): void {
  let sum = 0;
  for (const x of row) sum = f(sum + f(x * x));
  const inverse = f(1 / f(Math.sqrt(f(f(sum / row.length) + f(eps)))));
  for (let j = 0; j < row.length; j++) row[j] = f(f(f(row[j] * inverse) * (weight ? weight[j] : 1)) * f(scale));
}

export function float32Kernels(): InferenceKernels & Partial<Kernels> {
  return {
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
    exp: (x) => data(x).map((v) => f(Math.exp(v))),
    mul: (a, b) => data(a).map((x, i) => f(x * data(b)[i])),
    scale: (x, attrs) => data(x).map((v) => f(f(f(attrs.alpha) * v) + f(attrs.beta))),
    diffAttention(q, k, v, lambda, normWeight, attrs, out) {
      const [batch, tokens, halfHeads, dk] = q.shape;
      const [, keys, kvHeads, dv] = v.shape;
      const heads = halfHeads / 2;
      const keyHeads = k.shape[2];
      const result = new Float32Array(size(out.shape));
      for (let b = 0; b < batch; b++)
        for (let t = 0; t < tokens; t++)
          for (let h = 0; h < heads; h++) {
            const g = Math.floor((h * kvHeads) / heads);
            const visible = attrs.causal ? Math.min(attrs.keyLength, attrs.keyOffset + t + 1) : attrs.keyLength;
            const map = (m: 0 | 1) =>
              streamKeys(
                data(q),
                ((b * tokens + t) * halfHeads + 2 * h + m) * dk,
                data(k),
                (s) => ((b * keys + s) * keyHeads + (keyHeads === kvHeads ? g : 2 * g + m)) * dk,
                data(v),
                (s) => ((b * keys + s) * kvHeads + g) * dv,
                dk,
                dv,
                visible,
                attrs.scale,
              );
            const o1 = map(0);
            const o2 = map(1);
            const lam = lambda.shape.length === 3 ? data(lambda)[(b * tokens + t) * heads + h] : data(lambda)[h];
            const row = o1.map((x, j) => f(x - f(lam * o2[j])));
            if (attrs.norm) rmsNormRow(row, attrs.norm.eps, normWeight && data(normWeight), attrs.norm.outputScale);
            result.set(row, ((b * tokens + t) * heads + h) * dv);
          }
      return result;
    },
    attention(q, k, v, attrs, out) {
      const [batch, tokens, heads, dk] = q.shape;
      const [, keys, kvHeads, dv] = v.shape;
      const result = new Float32Array(size(out.shape));
      for (let b = 0; b < batch; b++)
        for (let t = 0; t < tokens; t++)
          for (let h = 0; h < heads; h++) {
            const g = Math.floor((h * kvHeads) / heads);
            const visible = attrs.causal ? Math.min(attrs.keyLength, attrs.keyOffset + t + 1) : attrs.keyLength;
            const row = streamKeys(
              data(q),
              ((b * tokens + t) * heads + h) * dk,
              data(k),
              (s) => ((b * keys + s) * kvHeads + g) * dk,
              data(v),
              (s) => ((b * keys + s) * kvHeads + g) * dv,
              dk,
              dv,
              visible,
              attrs.scale,
            );
            result.set(row, ((b * tokens + t) * heads + h) * dv);
          }
      return result;
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

/**
 * Kernels that store float16/bfloat16 the way a device does with float32 accumulation: inputs are
 * read as stored, everything is computed in float32 and each output is rounded to its dtype.
 */
function storageKernels(inner: Partial<Kernels>): Partial<Kernels> {
  const rounded = (out: { dtype: DType }, result: unknown) =>
    out.dtype === 'int32' ? result : (result as Float32Array).map((x) => roundTo(x, out.dtype));
  const kernels = {} as Record<string, unknown>;
  for (const [name, kernel] of Object.entries(inner)) {
    kernels[name] =
      name === 'cacheWrite'
        ? kernel
        : (...args: unknown[]) =>
            rounded(args[args.length - 1] as { dtype: DType }, (kernel as (...a: unknown[]) => unknown)(...args));
  }
  return kernels as Partial<Kernels>;
}

export interface Float32BackendOptions {
  /**
   * Also store float16 and bfloat16: uploads and every kernel output are rounded to the storage type
   * (to nearest, float16 with its narrow exponent range), as a device that stores half precision and
   * computes in float32 does.
   */
  readonly storage?: boolean;
  /** A bug to run instead of the correct kernels (built on them; its outputs are rounded like theirs). */
  readonly mutate?: (base: InferenceKernels) => Partial<Kernels>;
  /** Kernels left out (reported as unsupported by core). */
  readonly omit?: readonly KernelName[];
}

/** The float32 double; with `storage`, it also stores float16 and bfloat16 (rounded as above). */
export function float32Backend(name = 'float32-emulated', options: Float32BackendOptions = {}): Backend {
  const correct = float32Kernels();
  const kernels: Partial<Kernels> = { ...correct, ...options.mutate?.(correct) };
  for (const kernel of options.omit ?? []) delete kernels[kernel];
  return {
    name,
    device: 'float32 arithmetic emulated with Math.fround (test double)',
    kernels: options.storage ? storageKernels(kernels) : kernels,
    dtypes: options.storage ? ['float32', 'float16', 'bfloat16', 'int32'] : ['float32', 'int32'],
    upload: (values: HostArray, dtype: DType): Storage =>
      dtype === 'int32' ? Int32Array.from(values) : Float32Array.from(values, (x) => roundTo(x, dtype)),
    zeros: (n: number, dtype: DType): Storage => (dtype === 'int32' ? new Int32Array(n) : new Float32Array(n)),
    read: async (storage, _dtype, n) => (storage as Storage).slice(0, n),
    free: () => {},
  };
}
