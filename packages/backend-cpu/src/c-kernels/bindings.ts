/**
 * The kernels of the contract that run as C on the pool, for the WebAssembly and native engines
 * alike: matmul and the two streaming attention kernels (with statistics, and their backward), where
 * nearly all of a model's time goes, the elementwise and norm kernels between them and their
 * backward, rotary, and the loss, the optimiser step, sumSquares and the embedding's scatter-add. Each
 * binding reads the shapes core validated, allocates the output and any scratch the kernel asks for
 * on the heap, and runs the kernel's job; tensors are passed as heap offsets, never copied.
 */
import type {
  AdamWAttrs,
  AddAttrs,
  AttentionAttrs,
  AttentionGradientSpecs,
  AttentionStatisticsSpec,
  AttentionStatisticsView,
  CrossEntropyAttrs,
  CrossEntropySpecs,
  DiffAttentionAttrs,
  DiffAttentionGradientSpecs,
  EmbeddingBackwardAttrs,
  MatmulAttrs,
  OutputSpec,
  RmsNormAttrs,
  RmsNormGradientSpecs,
  RotaryAttrs,
  SigmoidAttrs,
  SumSquaresAttrs,
  SwigluAttrs,
  SwigluGradientSpecs,
  TensorView,
} from '@diff-transformer/core';
import { DeviceError, matmulDims, sizeOf } from '@diff-transformer/core';
import type { HeapStorage, KernelHeap } from '../heap/heap.js';
import { type AttentionGeometry, type CKernelEntryPoints, ELEMENTWISE, MATMUL_FLAGS } from './entry-points.js';

/**
 * Below this many floating-point operations a kernel runs on the calling thread alone: waking the
 * workers costs tens of microseconds, as much as a million operations take.
 */
const PARALLEL_FLOPS = 1 << 20;
/** The same for memory-bound kernels, in elements. */
const PARALLEL_ELEMENTS = 1 << 17;

/** What runs a prepared job: the WebAssembly engine's ThreadPool, or the native addon's pool. */
export interface KernelPool {
  readonly threads: number;
  /** The heap offset of the pool's Job (c/job.h): every *_configure and *_prepare call writes into it. */
  readonly job: number;
  /** Runs the job a *_prepare call prepared, `tasks` its first phase's task count. */
  run(tasks: number, parallel: boolean): void;
}

/** What a binding runs with: the engine's heap, its pool and its entry points. */
export interface CKernelContext {
  readonly heap: KernelHeap;
  readonly pool: KernelPool;
  readonly exports: CKernelEntryPoints;
}

const pointer = (view: TensorView): number => (view.storage as HeapStorage).offset;

/** Runs a configured job with `bytes` of scratch, freeing the scratch whatever happens. */
function withScratch(context: CKernelContext, bytes: number, run: (scratch: number) => void): void {
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
  context: CKernelContext,
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
  withScratch(context, exports.matmul_configure(pool.job, batches, m, n, k, flags), (scratch) => {
    pool.run(
      exports.matmul_prepare(pool.job, pointer(a), pointer(b), c.offset, scratch),
      2 * batches * m * n * k >= PARALLEL_FLOPS,
    );
  });
  return c;
}

/** What a forward attention call writes besides its output (the *WithStatistics kernels). */
interface StatisticsOutputs {
  readonly logSumExp: HeapStorage;
  readonly mapOutputs: HeapStorage | null;
}

/** The shape arguments attention_configure and attention_backward_configure share (ATTENTION_GEOMETRY). */
function attentionGeometry(
  maps: 1 | 2,
  q: TensorView,
  k: TensorView,
  v: TensorView,
  lambda: TensorView | null,
  attrs: AttentionAttrs,
  norm: DiffAttentionAttrs['norm'],
): AttentionGeometry {
  const [batch, tokens, queryHeads, dk] = q.shape;
  const [, capacity, keyHeads] = k.shape;
  const [, , kvHeads, dv] = v.shape;
  return [
    batch,
    tokens,
    queryHeads / maps,
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
  ];
}

/** Both attention kernels; `maps` is 2 for differential attention, 1 for standard attention. */
function streamingAttention(
  context: CKernelContext,
  maps: 1 | 2,
  q: TensorView,
  k: TensorView,
  v: TensorView,
  lambda: TensorView | null,
  normWeight: TensorView | null,
  attrs: AttentionAttrs,
  norm: DiffAttentionAttrs['norm'],
  out: OutputSpec,
  statistics: StatisticsOutputs | null = null,
): HeapStorage {
  const { heap, pool, exports } = context;
  const y = heap.allocateTensor('float32', sizeOf(out.shape));
  if (y.length === 0) return y;
  const geometry = attentionGeometry(maps, q, k, v, lambda, attrs, norm);
  const bytes = exports.attention_configure(pool.job, ...geometry, statistics ? 1 : 0, pool.threads);
  const [batch, tokens, heads, , , dk, dv] = geometry;
  // Scores and weighted values for every (query, key) pair of every map: an upper bound when causal.
  const flops = 2 * maps * batch * heads * tokens * attrs.keyLength * (dk + dv);
  withScratch(context, bytes, (scratch) => {
    const weight = norm && normWeight ? pointer(normWeight) : 0;
    const tasks = exports.attention_prepare(
      pool.job,
      pointer(q),
      pointer(k),
      pointer(v),
      lambda ? pointer(lambda) : 0,
      weight,
      y.offset,
      statistics ? statistics.logSumExp.offset : 0,
      statistics?.mapOutputs ? statistics.mapOutputs.offset : 0,
      scratch,
    );
    pool.run(tasks, flops >= PARALLEL_FLOPS);
  });
  return y;
}

export function diffAttention(
  context: CKernelContext,
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
  context: CKernelContext,
  q: TensorView,
  k: TensorView,
  v: TensorView,
  attrs: AttentionAttrs,
  out: OutputSpec,
): HeapStorage {
  return streamingAttention(context, 1, q, k, v, null, null, attrs, null, out);
}

function elementwise(
  context: CKernelContext,
  kind: number,
  a: TensorView,
  b: TensorView | null,
  out: OutputSpec,
): HeapStorage {
  const { heap, pool, exports } = context;
  const y = heap.allocateTensor('float32', sizeOf(out.shape));
  if (y.length > 0)
    pool.run(
      exports.elementwise_prepare(pool.job, kind, pointer(a), b ? pointer(b) : 0, y.offset, y.length),
      y.length >= PARALLEL_ELEMENTS,
    );
  return y;
}

export function add(
  context: CKernelContext,
  a: TensorView,
  b: TensorView,
  _attrs: AddAttrs,
  out: OutputSpec,
): HeapStorage {
  return elementwise(context, ELEMENTWISE.add, a, b, out);
}

export function swiglu(
  context: CKernelContext,
  gate: TensorView,
  up: TensorView,
  _attrs: SwigluAttrs,
  out: OutputSpec,
): HeapStorage {
  return elementwise(context, ELEMENTWISE.swiglu, gate, up, out);
}

export function sigmoid(context: CKernelContext, x: TensorView, _attrs: SigmoidAttrs, out: OutputSpec): HeapStorage {
  return elementwise(context, ELEMENTWISE.sigmoid, x, null, out);
}

/** rotary on the pool (../../c/rotary.c), the same bits as the TypeScript kernel (double arithmetic rounded once). */
export function rotary(
  context: CKernelContext,
  x: TensorView,
  cos: TensorView,
  sin: TensorView,
  attrs: RotaryAttrs,
  out: OutputSpec,
): HeapStorage {
  const { heap, pool, exports } = context;
  const y = heap.allocateTensor('float32', sizeOf(out.shape));
  if (y.length === 0) return y;
  const [batch, tokens, heads, width] = x.shape;
  const tasks = exports.rotary_prepare(
    pool.job,
    pointer(x),
    pointer(cos),
    pointer(sin),
    y.offset,
    batch,
    tokens,
    heads,
    width,
    cos.shape[1],
    attrs.layout === 'interleaved' ? 1 : 0,
    attrs.positionOffset,
  );
  pool.run(tasks, y.length >= PARALLEL_ELEMENTS);
  return y;
}

export function rmsNorm(
  context: CKernelContext,
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
      pool.job,
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

export function diffAttentionWithStatistics(
  context: CKernelContext,
  q: TensorView,
  k: TensorView,
  v: TensorView,
  lambda: TensorView,
  normWeight: TensorView | null,
  attrs: DiffAttentionAttrs,
  out: OutputSpec,
  spec: AttentionStatisticsSpec,
): { output: HeapStorage; statistics: StatisticsOutputs } {
  const statistics = {
    logSumExp: context.heap.allocateTensor('float32', sizeOf(spec.logSumExp.shape)),
    // Core always asks differential attention for its map outputs.
    mapOutputs: context.heap.allocateTensor('float32', sizeOf(spec.mapOutputs!.shape)),
  };
  const output = streamingAttention(context, 2, q, k, v, lambda, normWeight, attrs, attrs.norm, out, statistics);
  return { output, statistics };
}

export function attentionWithStatistics(
  context: CKernelContext,
  q: TensorView,
  k: TensorView,
  v: TensorView,
  attrs: AttentionAttrs,
  out: OutputSpec,
  spec: AttentionStatisticsSpec,
): { output: HeapStorage; statistics: StatisticsOutputs } {
  const statistics = {
    logSumExp: context.heap.allocateTensor('float32', sizeOf(spec.logSumExp.shape)),
    mapOutputs: null,
  };
  const output = streamingAttention(context, 1, q, k, v, null, null, attrs, null, out, statistics);
  return { output, statistics };
}

/** The backward of both attention kernels (../../c/attention-backward.c); `maps` as streamingAttention. */
function attentionBackwardCall(
  context: CKernelContext,
  maps: 1 | 2,
  operands: {
    q: TensorView;
    k: TensorView;
    v: TensorView;
    lambda: TensorView | null;
    normWeight: TensorView | null;
    statistics: AttentionStatisticsView;
    output: TensorView | null;
    dOut: TensorView;
  },
  attrs: AttentionAttrs,
  norm: DiffAttentionAttrs['norm'],
  grads: {
    dq: HeapStorage;
    dk: HeapStorage;
    dv: HeapStorage;
    dLambda: HeapStorage | null;
    dNormWeight: HeapStorage | null;
  },
): void {
  const { heap, pool, exports } = context;
  const { q, k, v, lambda, normWeight, statistics, output, dOut } = operands;
  const geometry = attentionGeometry(maps, q, k, v, lambda, attrs, norm);
  const [batch, tokens, heads, kvHeads, keyHeads, dk, dv, capacity] = geometry;
  // Keys past keyLength (a cache's stale rows) get no gradient; the kernel writes only the valid rows.
  const stale = (gradient: HeapStorage, width: number) => {
    const rows = heap.floats(gradient);
    for (let b = 0; b < batch; b++) rows.fill(0, (b * capacity + attrs.keyLength) * width, (b + 1) * capacity * width);
  };
  stale(grads.dk, keyHeads * dk);
  stale(grads.dv, kvHeads * dv);
  const bytes = exports.attention_backward_configure(pool.job, ...geometry, pool.threads);
  // Five products per (query, key) pair and map, as the forward's two: an upper bound when causal.
  const flops = 5 * maps * batch * heads * tokens * attrs.keyLength * (dk + dv);
  withScratch(context, bytes, (scratch) => {
    const tasks = exports.attention_backward_prepare(
      pool.job,
      pointer(q),
      pointer(k),
      pointer(v),
      lambda ? pointer(lambda) : 0,
      norm && normWeight ? pointer(normWeight) : 0,
      pointer(statistics.logSumExp),
      statistics.mapOutputs ? pointer(statistics.mapOutputs) : 0,
      output ? pointer(output) : 0,
      pointer(dOut),
      grads.dq.offset,
      grads.dk.offset,
      grads.dv.offset,
      grads.dLambda ? grads.dLambda.offset : 0,
      grads.dNormWeight ? grads.dNormWeight.offset : 0,
      scratch,
    );
    pool.run(tasks, flops >= PARALLEL_FLOPS);
  });
}

export function diffAttentionBackward(
  context: CKernelContext,
  q: TensorView,
  k: TensorView,
  v: TensorView,
  lambda: TensorView,
  normWeight: TensorView | null,
  statistics: AttentionStatisticsView,
  dOut: TensorView,
  attrs: DiffAttentionAttrs,
  out: DiffAttentionGradientSpecs,
): { dq: HeapStorage; dk: HeapStorage; dv: HeapStorage; dLambda: HeapStorage; dNormWeight: HeapStorage | null } {
  const heap = context.heap;
  const output = (spec: OutputSpec) => heap.allocateTensor('float32', sizeOf(spec.shape));
  const grads = {
    dq: output(out.dq),
    dk: output(out.dk),
    dv: output(out.dv),
    dLambda: output(out.dLambda),
    dNormWeight: out.dNormWeight && output(out.dNormWeight),
  };
  // A weight without the norm has no gradient to receive (core never passes one).
  if (grads.dNormWeight && !attrs.norm) heap.floats(grads.dNormWeight).fill(0);
  attentionBackwardCall(
    context,
    2,
    { q, k, v, lambda, normWeight, statistics, output: null, dOut },
    attrs,
    attrs.norm,
    { ...grads, dNormWeight: attrs.norm ? grads.dNormWeight : null },
  );
  return grads;
}

export function attentionBackward(
  context: CKernelContext,
  q: TensorView,
  k: TensorView,
  v: TensorView,
  output: TensorView,
  statistics: AttentionStatisticsView,
  dOut: TensorView,
  attrs: AttentionAttrs,
  out: AttentionGradientSpecs,
): { dq: HeapStorage; dk: HeapStorage; dv: HeapStorage } {
  const heap = context.heap;
  const grads = {
    dq: heap.allocateTensor('float32', sizeOf(out.dq.shape)),
    dk: heap.allocateTensor('float32', sizeOf(out.dk.shape)),
    dv: heap.allocateTensor('float32', sizeOf(out.dv.shape)),
  };
  attentionBackwardCall(
    context,
    1,
    { q, k, v, lambda: null, normWeight: null, statistics, output, dOut },
    attrs,
    null,
    { ...grads, dLambda: null, dNormWeight: null },
  );
  return grads;
}

export function rmsNormBackward(
  context: CKernelContext,
  x: TensorView,
  weight: TensorView | null,
  dy: TensorView,
  attrs: RmsNormAttrs,
  out: RmsNormGradientSpecs,
): { dx: HeapStorage; dWeight: HeapStorage | null } {
  const { heap, pool, exports } = context;
  const dx = heap.allocateTensor('float32', sizeOf(out.dx.shape));
  const dWeight = out.dWeight && heap.allocateTensor('float32', sizeOf(out.dWeight.shape));
  const width = x.shape[x.shape.length - 1];
  const rows = width === 0 ? 0 : dx.length / width;
  if (rows === 0) {
    if (dWeight) heap.floats(dWeight).fill(0);
    return { dx, dWeight };
  }
  withScratch(context, exports.rms_norm_backward_scratch(rows, width), (scratch) => {
    const tasks = exports.rms_norm_backward_prepare(
      pool.job,
      pointer(x),
      weight ? pointer(weight) : 0,
      pointer(dy),
      dx.offset,
      dWeight ? dWeight.offset : 0,
      scratch,
      rows,
      width,
      attrs.eps,
    );
    pool.run(tasks, dx.length >= PARALLEL_ELEMENTS);
  });
  return { dx, dWeight };
}

export function swigluBackward(
  context: CKernelContext,
  gate: TensorView,
  up: TensorView,
  dy: TensorView,
  _attrs: SwigluAttrs,
  out: SwigluGradientSpecs,
): { dGate: HeapStorage; dUp: HeapStorage } {
  const { heap, pool, exports } = context;
  const dGate = heap.allocateTensor('float32', sizeOf(out.dGate.shape));
  const dUp = heap.allocateTensor('float32', sizeOf(out.dUp.shape));
  if (dGate.length > 0) {
    const tasks = exports.swiglu_backward_prepare(
      pool.job,
      pointer(gate),
      pointer(up),
      pointer(dy),
      dGate.offset,
      dUp.offset,
      dGate.length,
    );
    pool.run(tasks, dGate.length >= PARALLEL_ELEMENTS);
  }
  return { dGate, dUp };
}

export function sumSquares(
  context: CKernelContext,
  x: TensorView,
  _attrs: SumSquaresAttrs,
  out: OutputSpec,
): HeapStorage {
  const { heap, pool, exports } = context;
  const y = heap.allocateTensor('float32', sizeOf(out.shape));
  const length = sizeOf(x.shape);
  if (length === 0) {
    heap.floats(y).fill(0);
    return y;
  }
  withScratch(context, exports.sum_squares_scratch(length), (scratch) => {
    pool.run(exports.sum_squares_prepare(pool.job, pointer(x), y.offset, length, scratch), length >= PARALLEL_ELEMENTS);
  });
  return y;
}

export function embeddingBackward(
  context: CKernelContext,
  ids: TensorView,
  dy: TensorView,
  attrs: EmbeddingBackwardAttrs,
  out: OutputSpec,
): HeapStorage {
  const { heap, pool, exports } = context;
  const table = heap.allocateTensor('float32', sizeOf(out.shape));
  const width = out.shape[1];
  const count = sizeOf(ids.shape);
  if (width === 0) return table;
  withScratch(context, exports.embedding_backward_scratch(count, attrs.vocabSize), (scratch) => {
    const tasks = exports.embedding_backward_prepare(
      pool.job,
      pointer(ids),
      pointer(dy),
      table.offset,
      count,
      attrs.vocabSize,
      width,
      scratch,
    );
    pool.run(tasks, table.length >= PARALLEL_ELEMENTS);
  });
  return table;
}

export function crossEntropy(
  context: CKernelContext,
  logits: TensorView,
  targets: TensorView,
  attrs: CrossEntropyAttrs,
  out: CrossEntropySpecs,
): { loss: HeapStorage; dLogits: HeapStorage } {
  const { heap, pool, exports } = context;
  const loss = heap.allocateTensor('float32', 1);
  const dLogits = heap.allocateTensor('float32', sizeOf(out.dLogits.shape));
  const [rows, vocab] = logits.shape;
  if (rows === 0 || vocab === 0) {
    heap.floats(loss).fill(0);
    return { loss, dLogits };
  }
  withScratch(context, 8 * rows, (scratch) => {
    const tasks = exports.cross_entropy_prepare(
      pool.job,
      pointer(logits),
      pointer(targets),
      loss.offset,
      dLogits.offset,
      scratch,
      rows,
      vocab,
      attrs.ignoreIndex,
      attrs.scale,
    );
    pool.run(tasks, dLogits.length >= PARALLEL_ELEMENTS);
  });
  return { loss, dLogits };
}

export function adamw(
  context: CKernelContext,
  param: TensorView,
  grad: TensorView,
  m: TensorView,
  v: TensorView,
  attrs: AdamWAttrs,
): void {
  const { pool, exports } = context;
  const length = sizeOf(param.shape);
  if (length === 0) return;
  const { learningRate, beta1, beta2, eps, weightDecay, step, gradScale } = attrs;
  // The bias corrections in float64 on the host, as the contract asks.
  const tasks = exports.adamw_prepare(
    pool.job,
    pointer(param),
    pointer(grad),
    pointer(m),
    pointer(v),
    length,
    beta1,
    1 - beta1,
    beta2,
    1 - beta2,
    eps,
    1 - learningRate * weightDecay,
    learningRate / (1 - beta1 ** step),
    1 / Math.sqrt(1 - beta2 ** step),
    gradScale,
  );
  pool.run(tasks, length >= PARALLEL_ELEMENTS);
}
