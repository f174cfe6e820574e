/**
 * The kernels that run as WebAssembly on the thread pool: matmul and the two streaming attention
 * kernels, where nearly all of a model's time goes, and the elementwise and norm kernels between
 * them. Each binding reads the shapes core validated, allocates the output and any scratch the
 * module asks for on the heap, and runs the module's job; tensors are passed as pointers, never
 * copied.
 */
import type {
  AddAttrs,
  AttentionAttrs,
  DiffAttentionAttrs,
  MatmulAttrs,
  OutputSpec,
  RmsNormAttrs,
  SigmoidAttrs,
  SwigluAttrs,
  TensorView,
} from '@diff-transformer/core';
import { DeviceError, matmulDims, sizeOf } from '@diff-transformer/core';
import type { HeapStorage, WasmHeap } from '../heap/heap.js';
import type { ThreadPool } from '../threads/pool.js';
import { ELEMENTWISE, MATMUL_FLAGS, type KernelExports } from '../wasm/exports.js';

/**
 * Below this many floating-point operations a kernel runs on the calling thread alone: waking the
 * workers costs tens of microseconds, as much as a million operations take.
 */
const PARALLEL_FLOPS = 1 << 20;
/** The same for memory-bound kernels, in elements. */
const PARALLEL_ELEMENTS = 1 << 17;

export interface WebAssemblyContext {
  readonly heap: WasmHeap;
  readonly pool: ThreadPool;
  readonly exports: KernelExports;
}

const pointer = (view: TensorView): number => (view.storage as HeapStorage).offset;

/** Runs a configured job with `bytes` of scratch, freeing the scratch whatever happens. */
function withScratch(context: WebAssemblyContext, bytes: number, run: (scratch: number) => void): void {
  if (bytes >>> 0 === 0xffffffff)
    throw new DeviceError('cpu', 'out-of-memory', 'out of memory: a kernel needs 4 GiB or more of scratch memory');
  const scratch = context.heap.allocate(bytes >>> 0);
  try {
    run(scratch);
  } finally {
    context.heap.free(scratch);
  }
}

export function matmul(
  context: WebAssemblyContext,
  a: TensorView,
  b: TensorView,
  attrs: MatmulAttrs,
  out: OutputSpec,
): HeapStorage {
  const { heap, pool, exports } = context;
  const c = heap.allocateTensor('float32', sizeOf(out.shape));
  const { batches, m, n, k, sharedB } = matmulDims(a, b, attrs, out);
  if (c.length === 0) return c;
  if (k === 0) {
    heap.floats(c).fill(0);
    return c;
  }
  const flags =
    (attrs.transposeA ? MATMUL_FLAGS.transposeA : 0) |
    (attrs.transposeB ? MATMUL_FLAGS.transposeB : 0) |
    (sharedB ? MATMUL_FLAGS.sharedB : 0);
  withScratch(context, exports.matmul_configure(batches, m, n, k, flags), (scratch) => {
    pool.run(
      exports.matmul_prepare(pointer(a), pointer(b), c.offset, scratch),
      2 * batches * m * n * k >= PARALLEL_FLOPS,
    );
  });
  return c;
}

/** Both attention kernels; `maps` is 2 for differential attention, 1 for standard attention. */
function streamingAttention(
  context: WebAssemblyContext,
  maps: 1 | 2,
  q: TensorView,
  k: TensorView,
  v: TensorView,
  lambda: TensorView | null,
  normWeight: TensorView | null,
  attrs: AttentionAttrs,
  norm: DiffAttentionAttrs['norm'],
  out: OutputSpec,
): HeapStorage {
  const { heap, pool, exports } = context;
  const y = heap.allocateTensor('float32', sizeOf(out.shape));
  if (y.length === 0) return y;
  const [batch, tokens, queryHeads, dk] = q.shape;
  const heads = queryHeads / maps;
  const [, capacity, keyHeads] = k.shape;
  const [, , kvHeads, dv] = v.shape;
  const bytes = exports.attention_configure(
    batch,
    tokens,
    heads,
    kvHeads,
    keyHeads,
    dk,
    dv,
    capacity,
    maps,
    lambda !== null && lambda.shape.length === 3 ? 1 : 0,
    attrs.causal ? 1 : 0,
    attrs.keyOffset,
    attrs.keyLength,
    attrs.scale,
    norm ? 1 : 0,
    norm?.eps ?? 0,
    norm?.outputScale ?? 1,
    pool.threads,
  );
  // Scores and weighted values for every (query, key) pair of every map: an upper bound when causal.
  const flops = 2 * maps * batch * heads * tokens * attrs.keyLength * (dk + dv);
  withScratch(context, bytes, (scratch) => {
    const weight = norm && normWeight ? pointer(normWeight) : 0;
    const tasks = exports.attention_prepare(
      pointer(q),
      pointer(k),
      pointer(v),
      lambda ? pointer(lambda) : 0,
      weight,
      y.offset,
      scratch,
    );
    pool.run(tasks, flops >= PARALLEL_FLOPS);
  });
  return y;
}

export function diffAttention(
  context: WebAssemblyContext,
  q: TensorView,
  k: TensorView,
  v: TensorView,
  lambda: TensorView,
  normWeight: TensorView | null,
  attrs: DiffAttentionAttrs,
  out: OutputSpec,
): HeapStorage {
  return streamingAttention(context, 2, q, k, v, lambda, normWeight, attrs, attrs.norm, out);
}

export function attention(
  context: WebAssemblyContext,
  q: TensorView,
  k: TensorView,
  v: TensorView,
  attrs: AttentionAttrs,
  out: OutputSpec,
): HeapStorage {
  return streamingAttention(context, 1, q, k, v, null, null, attrs, null, out);
}

function elementwise(
  context: WebAssemblyContext,
  kind: number,
  a: TensorView,
  b: TensorView | null,
  out: OutputSpec,
): HeapStorage {
  const { heap, pool, exports } = context;
  const y = heap.allocateTensor('float32', sizeOf(out.shape));
  if (y.length > 0)
    pool.run(
      exports.elementwise_prepare(kind, pointer(a), b ? pointer(b) : 0, y.offset, y.length),
      y.length >= PARALLEL_ELEMENTS,
    );
  return y;
}

export function add(
  context: WebAssemblyContext,
  a: TensorView,
  b: TensorView,
  _attrs: AddAttrs,
  out: OutputSpec,
): HeapStorage {
  return elementwise(context, ELEMENTWISE.add, a, b, out);
}

export function swiglu(
  context: WebAssemblyContext,
  gate: TensorView,
  up: TensorView,
  _attrs: SwigluAttrs,
  out: OutputSpec,
): HeapStorage {
  return elementwise(context, ELEMENTWISE.swiglu, gate, up, out);
}

export function sigmoid(
  context: WebAssemblyContext,
  x: TensorView,
  _attrs: SigmoidAttrs,
  out: OutputSpec,
): HeapStorage {
  return elementwise(context, ELEMENTWISE.sigmoid, x, null, out);
}

export function rmsNorm(
  context: WebAssemblyContext,
  x: TensorView,
  weight: TensorView | null,
  attrs: RmsNormAttrs,
  out: OutputSpec,
): HeapStorage {
  const { heap, pool, exports } = context;
  const y = heap.allocateTensor('float32', sizeOf(out.shape));
  const width = x.shape[x.shape.length - 1];
  if (y.length > 0) {
    const tasks = exports.rms_norm_prepare(
      pointer(x),
      weight ? pointer(weight) : 0,
      y.offset,
      y.length / width,
      width,
      attrs.eps,
    );
    pool.run(tasks, y.length >= PARALLEL_ELEMENTS);
  }
  return y;
}
