/**
 * diffAttentionBackward and attentionBackward: the passes of ../shaders/attention-backward.ts (row
 * terms, key-major dK/dV, query-major dQ), then fixed-order sums over rows for a per-head dλ and for
 * dNormWeight. Scratch (dU, the row terms, n·outputScale) is linear in the rows; nothing is T×S.
 */
import type {
  AttentionAttrs,
  AttentionGradients,
  AttentionGradientSpecs,
  AttentionStatisticsView,
  DiffAttentionAttrs,
  DiffAttentionGradients,
  DiffAttentionGradientSpecs,
  TensorView,
} from '@diff-transformer/core';
import { UnsupportedKernelError } from '@diff-transformer/core';
import { BACKEND_NAME } from '../device/gpu.js';
import type { Runtime } from '../device/runtime.js';
import type { GpuStorage } from '../device/storage.js';
import {
  BACKWARD_THREADS,
  type BackwardShape,
  diffRowProgram,
  type KeyValueTile,
  keyValueProgram,
  keyValueWorkgroupFloats,
  MAX_ACCUMULATORS,
  type QueryTile,
  queryProgram,
  queryWorkgroupFloats,
  ROW_PASS_THREADS,
  standardRowProgram,
  TERMS_PER_MAP,
} from '../shaders/attention-backward.js';
import { grid, params } from '../shaders/common.js';
import { columnSumsInto } from './reduce.js';
import { outputFor, storageOf } from './storage.js';

/** Queries per workgroup of the query-major pass (THREADS / 16 = 8 lanes share a query's columns). */
const QUERY_BLOCK = 16;

/**
 * The key-major tile: the most keys per workgroup (at most 64) whose dV and dK columns fit
 * MAX_ACCUMULATORS registers per thread, then the most queries per staged tile (at most 32) that fit
 * the workgroup memory budget; fewer keys if not even one query fits.
 */
export function keyValueTile(shape: BackwardShape, budgetBytes: number): KeyValueTile | null {
  const floats = budgetBytes / 4;
  for (let bkv = 64; bkv >= 1; bkv /= 2) {
    const lanes = BACKWARD_THREADS / bkv;
    if (Math.ceil(shape.dv / lanes) + shape.keyMaps * Math.ceil(shape.dk / lanes) > MAX_ACCUMULATORS && bkv > 1) {
      continue;
    }
    for (let bq = 32; bq >= 1; bq /= 2) {
      if (keyValueWorkgroupFloats(shape, { bkv, bq }) <= floats) return { bkv, bq };
    }
  }
  return null;
}

/** The query-major tile: QUERY_BLOCK queries, the most keys per staged tile (at most 64) that fit. */
export function queryTile(shape: BackwardShape, budgetBytes: number): QueryTile | null {
  const floats = budgetBytes / 4;
  for (let bk = 64; bk >= 1; bk = bk > 4 ? bk - 4 : bk - 1) {
    if (queryWorkgroupFloats(shape, { bq: QUERY_BLOCK, bk }) <= floats) return { bq: QUERY_BLOCK, bk };
  }
  return null;
}

interface BackwardCall {
  readonly kernel: 'diffAttentionBackward' | 'attentionBackward';
  readonly shape: BackwardShape;
  /** Heads H (q holds maps·H query heads). */
  readonly heads: number;
  readonly q: TensorView;
  readonly k: TensorView;
  readonly v: TensorView;
  readonly attrs: AttentionAttrs;
  /** dU [B, T, H, dv] and the row terms, from the row pass. */
  readonly dU: GpuStorage;
  readonly terms: GpuStorage;
  readonly dq: GpuStorage;
  readonly dk: GpuStorage;
  readonly dv: GpuStorage;
}

/** The tiles of both passes for this device, or UnsupportedKernelError when a head is too wide. */
function tiles(rt: Runtime, kernel: BackwardCall['kernel'], shape: BackwardShape) {
  // As the forward: at most 32 KiB, so that several workgroups stay resident per core.
  const budget = Math.min(rt.limits.maxComputeWorkgroupStorageSize, 32 * 1024);
  const keyValue = keyValueTile(shape, budget);
  const query = queryTile(shape, budget);
  if (!keyValue || !query) {
    throw new UnsupportedKernelError(
      kernel,
      BACKEND_NAME,
      `head widths dk ${shape.dk}, dv ${shape.dv} need more workgroup memory than the device's ${budget} bytes`,
    );
  }
  return { keyValue, query };
}

/** The key-major and query-major passes, writing dk, dv and dq. */
function gradientPasses(rt: Runtime, call: BackwardCall): void {
  const { shape, heads, q, k, v, attrs } = call;
  const [batch, tokens] = q.shape;
  const [, capacity, kvHeads] = v.shape;
  const { keyValue, query } = tiles(rt, call.kernel, shape);
  const head = (blocks: number) =>
    params()
      .u(tokens, heads, kvHeads, k.shape[2], capacity, attrs.keyOffset, attrs.keyLength, attrs.causal ? 1 : 0)
      .u(batch, blocks)
      .f(attrs.scale).words;

  const keyBlocks = Math.ceil(capacity / keyValue.bkv);
  rt.dispatch(
    keyValueProgram(shape, keyValue),
    [storageOf(q), storageOf(k), storageOf(v), call.dU, call.terms, call.dk, call.dv],
    head(keyBlocks),
    grid(batch * kvHeads * keyBlocks),
  );
  const queryBlocks = Math.ceil(tokens / query.bq);
  rt.dispatch(
    queryProgram(shape, query),
    [storageOf(q), storageOf(k), storageOf(v), call.dU, call.terms, call.dq],
    head(queryBlocks),
    grid(batch * heads * queryBlocks),
  );
}

export function attentionBackward(
  rt: Runtime,
  q: TensorView,
  k: TensorView,
  v: TensorView,
  output: TensorView,
  statistics: AttentionStatisticsView,
  dOut: TensorView,
  attrs: AttentionAttrs,
  out: AttentionGradientSpecs,
): AttentionGradients {
  const [batch, tokens, heads, dk] = q.shape;
  const dv = v.shape[3];
  const shape: BackwardShape = { maps: 1, keyMaps: 1, dk, dv };
  tiles(rt, 'attentionBackward', shape);
  const rows = batch * tokens * heads;
  const dq = outputFor(rt, out.dq);
  const dkOut = outputFor(rt, out.dk);
  const dvOut = outputFor(rt, out.dv);
  const terms = rt.allocate(Math.max(rows, 1) * TERMS_PER_MAP * 4, 'float32');
  try {
    rt.dispatch(
      standardRowProgram(dv),
      [storageOf(dOut), storageOf(output), storageOf(statistics.logSumExp), terms],
      params().u(rows).words,
      grid(Math.ceil(rows / ROW_PASS_THREADS)),
    );
    gradientPasses(rt, {
      kernel: 'attentionBackward',
      shape,
      heads,
      q,
      k,
      v,
      attrs,
      dU: storageOf(dOut),
      terms,
      dq,
      dk: dkOut,
      dv: dvOut,
    });
  } finally {
    rt.free(terms);
  }
  return { dq, dk: dkOut, dv: dvOut };
}

export function diffAttentionBackward(
  rt: Runtime,
  q: TensorView,
  k: TensorView,
  v: TensorView,
  lambda: TensorView,
  normWeight: TensorView | null,
  statistics: AttentionStatisticsView,
  dOut: TensorView,
  attrs: DiffAttentionAttrs,
  out: DiffAttentionGradientSpecs,
): DiffAttentionGradients {
  const [batch, tokens, halfHeads, dk] = q.shape;
  const [, , kvHeads, dv] = v.shape;
  const heads = halfHeads / 2;
  const keyMaps = k.shape[2] === 2 * kvHeads ? 2 : 1;
  const shape: BackwardShape = { maps: 2, keyMaps, dk, dv };
  tiles(rt, 'diffAttentionBackward', shape);
  if (!statistics.mapOutputs) {
    throw new UnsupportedKernelError('diffAttentionBackward', BACKEND_NAME, 'the saved map outputs are missing');
  }
  const rows = batch * tokens * heads;
  const norm = attrs.norm;
  const weight = norm && normWeight ? normWeight : null;
  const perToken = lambda.shape.length === 3;

  const dq = outputFor(rt, out.dq);
  const dkOut = outputFor(rt, out.dk);
  const dvOut = outputFor(rt, out.dv);
  const dLambda = outputFor(rt, out.dLambda);
  const dNormWeight = out.dNormWeight && weight ? outputFor(rt, out.dNormWeight) : null;
  const dU = rt.allocate(Math.max(rows * dv, 1) * 4, 'float32');
  const terms = rt.allocate(Math.max(rows, 1) * 2 * TERMS_PER_MAP * 4, 'float32');
  const nScaled = weight ? rt.allocate(Math.max(rows * dv, 1) * 4, 'float32') : null;
  try {
    rt.dispatch(
      diffRowProgram(dv, weight !== null),
      [
        storageOf(dOut),
        storageOf(statistics.mapOutputs),
        storageOf(lambda),
        weight ? storageOf(weight) : rt.absent,
        storageOf(statistics.logSumExp),
        dU,
        terms,
        ...(nScaled ? [nScaled] : []),
      ],
      params()
        .u(rows, heads, perToken ? 1 : 0, norm ? 1 : 0, weight ? 1 : 0)
        .f(norm?.eps ?? 0, norm?.outputScale ?? 1).words,
      grid(rows),
    );
    gradientPasses(rt, {
      kernel: 'diffAttentionBackward',
      shape,
      heads,
      q,
      k,
      v,
      attrs,
      dU,
      terms,
      dq,
      dk: dkOut,
      dv: dvOut,
    });
    // dλ_row is the row terms' fourth float: per token as it is, per head summed over (b, t).
    const stride = 2 * TERMS_PER_MAP;
    columnSumsInto(
      rt,
      {
        x: terms,
        rows: batch * tokens,
        width: heads,
        rowStride: heads * stride,
        columnStride: stride,
        offset: 3,
        chunkRows: perToken ? 1 : undefined,
      },
      dLambda,
    );
    if (dNormWeight && nScaled) {
      columnSumsInto(
        rt,
        { x: storageOf(dOut), y: nScaled, rows, width: dv, rowStride: dv, columnStride: 1, offset: 0 },
        dNormWeight,
      );
    }
  } finally {
    rt.free(dU);
    rt.free(terms);
    if (nScaled) rt.free(nScaled);
  }
  return { dq, dk: dkOut, dv: dvOut, dLambda, dNormWeight };
}
