/** Runs an exported decoder graph in onnxruntime-node the way a serving loop does: prefill, then one token a step. */
import { INPUT_NAMES, OUTPUT_NAMES, type DecoderInterface } from '@diff-transformer/onnx';
import * as ort from 'onnxruntime-node';

export { ort };

export async function createSession(model: Uint8Array | string): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: 1,
  };
  return typeof model === 'string'
    ? ort.InferenceSession.create(model, options)
    : ort.InferenceSession.create(model, options);
}

const int64 = (values: readonly number[], dims: number[]) =>
  new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims);

/** A decoding state: the cache tensors the graph returned last, and how many positions they hold. */
export interface OnnxCache {
  readonly tensors: Record<string, ort.Tensor>;
  readonly length: number;
}

export function emptyCache(io: DecoderInterface, batch: number): OnnxCache {
  const tensors: Record<string, ort.Tensor> = {};
  for (let i = 0; i < io.layers; i++) {
    for (const name of [INPUT_NAMES.pastKey(i), INPUT_NAMES.pastValue(i)]) {
      tensors[name] = new ort.Tensor('float32', new Float32Array(0), [batch, io.kvHeads, 0, io.headSize]);
    }
  }
  return { tensors, length: 0 };
}

/**
 * Logits [B, T, V] of `rows` after `cache` (positions continue from it, every mask entry 1 unless
 * `mask` gives the whole [B, past + T] mask and `positions` the [B, T] positions), and the new cache.
 */
export async function runDecoder(
  session: ort.InferenceSession,
  io: DecoderInterface,
  rows: readonly (readonly number[])[],
  cache: OnnxCache,
  options: { mask?: readonly (readonly number[])[]; positions?: readonly (readonly number[])[] } = {},
): Promise<{ logits: Float32Array; cache: OnnxCache }> {
  const batch = rows.length;
  const t = rows[0].length;
  const total = cache.length + t;
  const positions = options.positions ?? rows.map(() => Array.from({ length: t }, (_, i) => cache.length + i));
  const mask = options.mask ?? rows.map(() => new Array<number>(total).fill(1));
  const feeds: Record<string, ort.Tensor> = {
    ...cache.tensors,
    [INPUT_NAMES.inputIds]: int64(rows.flat(), [batch, t]),
    [INPUT_NAMES.attentionMask]: int64(mask.flat(), [batch, total]),
    [INPUT_NAMES.positionIds]: int64(positions.flat(), [batch, t]),
  };
  const out = await session.run(feeds);
  const tensors: Record<string, ort.Tensor> = {};
  for (let i = 0; i < io.layers; i++) {
    tensors[INPUT_NAMES.pastKey(i)] = out[OUTPUT_NAMES.presentKey(i)];
    tensors[INPUT_NAMES.pastValue(i)] = out[OUTPUT_NAMES.presentValue(i)];
  }
  return { logits: out[OUTPUT_NAMES.logits].data as Float32Array, cache: { tensors, length: total } };
}

function argmaxLast(logits: Float32Array, vocab: number): number {
  const row = logits.length / vocab - 1;
  let best = 0;
  for (let j = 1; j < vocab; j++) if (logits[row * vocab + j] > logits[row * vocab + best]) best = j;
  return best;
}

/** Greedy decoding with the graph's KV cache: the prompt once, then each new token alone. */
export async function greedyOnnx(
  session: ort.InferenceSession,
  io: DecoderInterface,
  prompt: readonly number[],
  maxNewTokens: number,
): Promise<number[]> {
  const ids: number[] = [];
  let cache = emptyCache(io, 1);
  let input = [...prompt];
  for (let step = 0; step < maxNewTokens; step++) {
    const result = await runDecoder(session, io, [input], cache);
    cache = result.cache;
    const next = argmaxLast(result.logits, io.vocabSize);
    ids.push(next);
    input = [next];
  }
  return ids;
}
