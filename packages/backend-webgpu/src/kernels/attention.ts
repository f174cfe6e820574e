/**
 * diffAttention and attention: the fused streaming shaders of ../shaders/attention.ts, with the
 * choice of shape class (queries per workgroup, keys per tile), of split-K for decoding, and of the
 * ranges of query blocks a long prefill is dispatched in (no dispatch long enough to trip a GPU
 * watchdog: a 32K-token prefill is seconds of work on a small GPU). The *WithStatistics forms are the
 * same programs writing what the backward needs as well.
 *
 *   diffAttention  q [B, T, 2H, dk], k [B, S, 2Hkv | Hkv, dk], v [B, S, Hkv, dv], λ [H] | [B, T, H]
 *   attention      q [B, T, H, dk],  k [B, S, Hkv, dk],        v [B, S, Hkv, dv]
 * → [B, T, H, dv]. Only keys below keyLength are read; S may be a larger cache.
 */
import type {
  AttentionAttrs,
  AttentionStatisticsSpec,
  AttentionWithStatistics,
  DiffAttentionAttrs,
  OutputSpec,
  TensorView,
} from '@diff-transformer/core';
import { UnsupportedKernelError } from '@diff-transformer/core';
import { BACKEND_NAME } from '../device/gpu.js';
import type { Runtime } from '../device/runtime.js';
import type { GpuStorage } from '../device/storage.js';
import {
  attentionProgram,
  attentionWorkgroupFloats,
  combineProgram,
  type AttentionShape,
} from '../shaders/attention.js';
import { grid, params } from '../shaders/common.js';
import { outputFor, storageOf } from './storage.js';

/** When decoding splits the keys across workgroups (split-K). */
export interface SplitKeysOptions {
  /** Split while fewer workgroups than this would run. Default 256 (a large GPU's SMs, twice over). */
  readonly targetWorkgroups?: number;
  /** Never give a partition fewer keys than this. Default 256. */
  readonly minKeysPerPartition?: number;
  /** At most this many partitions. Default 64. */
  readonly maxPartitions?: number;
  /** A prefill's dispatch holds at most this many multiply-adds (ranges of query blocks). Default MAX_DISPATCH_WORK. */
  readonly maxDispatchWork?: number;
}

interface AttentionCall {
  readonly kernel: 'diffAttention' | 'attention' | 'diffAttentionWithStatistics' | 'attentionWithStatistics';
  readonly maps: 1 | 2;
  readonly q: TensorView;
  readonly k: TensorView;
  readonly v: TensorView;
  readonly lambda: TensorView | null;
  readonly normWeight: TensorView | null;
  readonly attrs: AttentionAttrs;
  readonly norm: DiffAttentionAttrs['norm'];
  readonly out: OutputSpec;
  readonly statistics: AttentionStatisticsSpec | null;
}

export function diffAttention(
  rt: Runtime,
  split: SplitKeysOptions,
  q: TensorView,
  k: TensorView,
  v: TensorView,
  lambda: TensorView,
  normWeight: TensorView | null,
  attrs: DiffAttentionAttrs,
  out: OutputSpec,
  statistics: AttentionStatisticsSpec | null = null,
): AttentionWithStatistics {
  return run(rt, split, {
    kernel: statistics ? 'diffAttentionWithStatistics' : 'diffAttention',
    maps: 2,
    q,
    k,
    v,
    lambda,
    normWeight: attrs.norm ? normWeight : null,
    attrs,
    norm: attrs.norm,
    out,
    statistics,
  });
}

export function attention(
  rt: Runtime,
  split: SplitKeysOptions,
  q: TensorView,
  k: TensorView,
  v: TensorView,
  attrs: AttentionAttrs,
  out: OutputSpec,
  statistics: AttentionStatisticsSpec | null = null,
): AttentionWithStatistics {
  return run(rt, split, {
    kernel: statistics ? 'attentionWithStatistics' : 'attention',
    maps: 1,
    q,
    k,
    v,
    lambda: null,
    normWeight: null,
    attrs,
    norm: null,
    out,
    statistics,
  });
}

/**
 * Queries per workgroup: 16 for a prefill, 1 for fewer queries (decoding, short chunks), where the
 * threads spread over the value columns instead. Two shape classes keep the pipelines few.
 */
function queriesPerWorkgroup(tokens: number): number {
  return tokens >= 16 ? 16 : 1;
}

/** The largest key tile whose staged keys, values and scores fit the workgroup memory budget. */
function keysPerTile(shape: Omit<AttentionShape, 'bk' | 'split'>, budgetBytes: number): number {
  const budget = budgetBytes / 4;
  let bk = 64;
  while (bk > 1 && attentionWorkgroupFloats({ ...shape, bk }) > budget) bk = bk > 4 ? bk - 4 : bk - 1;
  return bk;
}

function run(rt: Runtime, split: SplitKeysOptions, call: AttentionCall): AttentionWithStatistics {
  const { maps, q, k, v, attrs, out } = call;
  const [batch, tokens, , dk] = q.shape;
  const [, capacity, kvHeads, dv] = v.shape;
  const keyHeads = k.shape[2];
  const heads = out.shape[2];
  const keyMaps: 1 | 2 = maps === 2 && keyHeads === 2 * kvHeads ? 2 : 1;

  const bq = queriesPerWorkgroup(tokens);
  // At most 32 KiB: more workgroup memory per workgroup means fewer workgroups resident per core.
  const budget = Math.min(rt.limits.maxComputeWorkgroupStorageSize, 32 * 1024);
  const base = { maps, keyMaps, dk, dv, bq };
  const bk = keysPerTile(base, budget);
  if (attentionWorkgroupFloats({ ...base, bk }) * 4 > budget) {
    throw new UnsupportedKernelError(
      call.kernel,
      BACKEND_NAME,
      `head widths dk ${dk}, dv ${dv} need more workgroup memory than the device's ${budget} bytes`,
    );
  }

  const blocks = Math.ceil(tokens / bq);
  const workgroups = batch * heads * blocks;
  const keysRead = attrs.causal ? Math.min(attrs.keyLength, attrs.keyOffset + tokens) : attrs.keyLength;
  const partitions = partitionsFor(workgroups, keysRead, bk, split);
  const chunk = partitions.count > 1 ? partitions.chunk : attrs.keyLength;

  const y = outputFor(rt, out);
  const logSumExp = call.statistics ? outputFor(rt, call.statistics.logSumExp) : null;
  const mapOutputs = call.statistics?.mapOutputs ? outputFor(rt, call.statistics.mapOutputs) : null;
  const result = { output: y, statistics: { logSumExp, mapOutputs } };
  // The programs always bind the statistics (one pipeline for inference and training): a call that
  // saves none binds placeholders, one each, since two writable bindings must not share a buffer here.
  const placeholders: GpuStorage[] = [];
  const placeholder = () => {
    const storage = rt.allocate(4, 'float32');
    placeholders.push(storage);
    return storage;
  };
  const saved = [logSumExp ?? placeholder(), ...(maps === 2 ? [mapOutputs ?? placeholder()] : [])];
  const lambdaBuffer = call.lambda ? storageOf(call.lambda) : rt.absent;
  const weightBuffer = call.normWeight ? storageOf(call.normWeight) : rt.absent;
  const norm = call.norm;
  const words = (blockOffset: number) =>
    params()
      .u(tokens, heads, kvHeads, keyHeads, capacity, attrs.keyOffset, attrs.keyLength, attrs.causal ? 1 : 0)
      .u(
        partitions.count,
        chunk,
        norm ? 1 : 0,
        call.normWeight ? 1 : 0,
        call.lambda && call.lambda.shape.length === 3 ? 1 : 0,
      )
      .f(attrs.scale, norm?.eps ?? 0, norm?.outputScale ?? 1)
      .u(batch, blockOffset, call.statistics ? 1 : 0).words;

  try {
    if (partitions.count === 1) {
      const program = attentionProgram({ ...base, bk, split: false });
      const bindings = [storageOf(q), storageOf(k), storageOf(v), lambdaBuffer, weightBuffer, y, ...saved];
      // Multiply-adds of one query block (all heads and batch entries): its keys × (dk + dv) per query and map.
      const perKey = batch * heads * maps * bq * (dk + dv);
      const keysOf = (block: number) =>
        attrs.causal
          ? Math.min(attrs.keyLength, attrs.keyOffset + Math.min(tokens, (block + 1) * bq))
          : attrs.keyLength;
      const cap = split.maxDispatchWork ?? MAX_DISPATCH_WORK;
      for (const [start, count] of blockRanges(blocks, (block) => perKey * keysOf(block), cap)) {
        rt.dispatch(program, bindings, words(start), [count, heads, batch]);
      }
      return result;
    }
    // Split-K: partial (max, sum, accumulator) per partition, then one combine pass per output row.
    const partialFloats = batch * heads * tokens * partitions.count * maps * (dv + 2);
    const partial = rt.allocate(partialFloats * 4, 'float32');
    try {
      const program = attentionProgram({ ...base, bk, split: true });
      rt.dispatch(program, [storageOf(q), storageOf(k), storageOf(v), lambdaBuffer, weightBuffer, partial], words(0), [
        blocks,
        heads,
        batch * partitions.count,
      ]);
      rt.dispatch(
        combineProgram(maps, dv),
        [partial, lambdaBuffer, weightBuffer, y, ...saved],
        words(0),
        grid(batch * tokens * heads),
      );
    } finally {
      // Released once the batch that reads it has completed.
      rt.free(partial);
    }
    return result;
  } finally {
    for (const storage of placeholders) rt.free(storage);
  }
}

/**
 * Multiply-adds one attention dispatch may hold: about 9·10⁹, tens of milliseconds on a small GPU, far
 * below the seconds after which an operating system or browser resets a GPU that does not answer.
 */
export const MAX_DISPATCH_WORK = 2 ** 33;

/**
 * Consecutive ranges [start, count] of `blocks` query blocks, each holding at most `cap` of work (a
 * block that alone exceeds it gets a range of its own); together they cover every block once.
 */
export function blockRanges(blocks: number, workOf: (block: number) => number, cap: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  let start = 0;
  let work = 0;
  for (let block = 0; block < blocks; block++) {
    const w = workOf(block);
    if (block > start && work + w > cap) {
      ranges.push([start, block - start]);
      start = block;
      work = 0;
    }
    work += w;
  }
  if (blocks > start) ranges.push([start, blocks - start]);
  return ranges;
}

/** How many key partitions, and keys per partition (a multiple of the tile), for split-K. */
export function partitionsFor(
  workgroups: number,
  keys: number,
  bk: number,
  options: SplitKeysOptions,
): { count: number; chunk: number } {
  const target = options.targetWorkgroups ?? 256;
  const minKeys = Math.max(1, options.minKeysPerPartition ?? 256);
  const maxPartitions = options.maxPartitions ?? 64;
  if (workgroups >= target) return { count: 1, chunk: keys };
  const wanted = Math.min(Math.ceil(target / workgroups), Math.floor(keys / minKeys), maxPartitions);
  if (wanted <= 1) return { count: 1, chunk: keys };
  const chunk = Math.ceil(Math.ceil(keys / wanted) / bk) * bk;
  return { count: Math.ceil(keys / chunk), chunk };
}
