/**
 * The decoder-only model: token embedding → numLayers × DecoderBlock → final RMSNorm → LM head
 * (tied to the embedding or its own matrix). Parameters live on one backend as named tensors.
 */
import type { Backend } from '../backend/kernels.js';
import { activeBackend, initializedBackend } from '../backend/registry.js';
import { ArgumentError } from '../errors.js';
import { embedding } from '../ops/embedding.js';
import { linear } from '../ops/matmul.js';
import { crossEntropy } from '../ops/loss.js';
import { narrow, reshape } from '../ops/memory.js';
import { rmsNorm } from '../ops/normalization.js';
import { tensor } from '../tensor/create.js';
import { keep, tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { DifferentialAttentionV2 } from './attention/differential-v2.js';
import { DifferentialAttention } from './attention/differential.js';
import type { AttentionModule, ParameterLookup } from './attention/module.js';
import { StandardAttention } from './attention/standard.js';
import { DecoderBlock } from './block.js';
import type { ModelConfig, ModelConfigInput } from './config.js';
import { resolveConfig } from './config.js';
import { SwiGLUFeedForward } from './feed-forward.js';
import { KVCache, type KVCacheOptions } from './kv-cache.js';
import type { HostTensor, InitOptions } from './parameters.js';
import { initParameters, validateParameters } from './parameters.js';
import { RotaryTables } from './rotary-tables.js';

export interface ModelOptions {
  /** Where the parameters live and kernels run; default: the active backend. */
  backend?: Backend;
}

export interface ForwardOptions {
  /** Decode against this cache: tokens go at positions cache.length…, and the cache advances. */
  cache?: KVCache;
  /** Compute logits for the last token only ([B, 1, V]), as generation needs. */
  lastTokenOnly?: boolean;
}

/** Token ids: one sequence, or a batch of sequences of equal length. */
export type TokenIds = readonly number[] | ReadonlyArray<readonly number[]>;

export class DiffTransformer {
  readonly config: ModelConfig;
  readonly backend: Backend;
  readonly blocks: readonly DecoderBlock[];
  readonly #parameters: Map<string, Tensor>;
  readonly #rope: RotaryTables;
  readonly #attention: AttentionModule[];
  #disposed = false;

  private constructor(config: ModelConfig, backend: Backend, parameters: Map<string, Tensor>) {
    this.config = config;
    this.backend = backend;
    this.#parameters = parameters;
    this.#rope = new RotaryTables(
      backend,
      { dim: config.headDim, theta: config.rope.theta, precision: config.rope.precision, scaling: config.rope.scaling },
      config.maxPositions,
    );
    const blocks: DecoderBlock[] = [];
    this.#attention = [];
    try {
      for (let i = 0; i < config.numLayers; i++) {
        const lookup = this.#lookup(`layers.${i}.`);
        const attention = this.#makeAttention(i, this.#lookup(`layers.${i}.attn.`));
        this.#attention.push(attention);
        blocks.push(
          new DecoderBlock(attention, new SwiGLUFeedForward(this.#lookup(`layers.${i}.ffn.`)), lookup, config.normEps),
        );
      }
    } catch (error) {
      // Free what this constructor made; the caller frees the parameters.
      for (const a of this.#attention) a.dispose?.();
      this.#rope.dispose();
      throw error;
    }
    this.blocks = blocks;
  }

  /** A model with random parameters (deterministic in `seed`). */
  static create(config: ModelConfigInput, options: ModelOptions & InitOptions = {}): DiffTransformer {
    const resolved = resolveConfig(config);
    return DiffTransformer.fromParameters(resolved, initParameters(resolved, options), options);
  }

  /**
   * A model from host parameters. Every name and shape is checked before anything is uploaded, and a
   * failure while uploading frees what was uploaded: no partly built model is left behind.
   */
  static fromParameters(
    config: ModelConfigInput | ModelConfig,
    parameters: ReadonlyMap<string, HostTensor>,
    options: ModelOptions & { source?: string } = {},
  ): DiffTransformer {
    const resolved = resolveConfig(config);
    validateParameters(resolved, parameters, options.source);
    const backend = options.backend ?? activeBackend();
    const uploaded = new Map<string, Tensor>();
    try {
      for (const [name, p] of parameters) uploaded.set(name, keep(tensor(p.data, p.shape, { backend })));
      return new DiffTransformer(resolved, backend, uploaded);
    } catch (error) {
      for (const t of uploaded.values()) t.dispose();
      throw error;
    }
  }

  /** The parameters, by name, as device tensors (owned by the model). */
  get parameters(): ReadonlyMap<string, Tensor> {
    return this.#parameters;
  }

  /** Copies every parameter back to the host (e.g. to save a checkpoint). */
  async hostParameters(): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const [name, t] of this.#parameters)
      out.set(name, { shape: [...t.shape], data: (await t.data()) as Float32Array });
    return out;
  }

  /**
   * A copy of this model on another backend (by name or instance); this one stays where it is, usable
   * until disposed. A model lives on the backend it was made on: setBackend() changes where new models
   * go, not where existing ones run.
   */
  async to(target: string | Backend): Promise<DiffTransformer> {
    this.#assertLive();
    const backend = typeof target === 'string' ? await initializedBackend(target) : target;
    return DiffTransformer.fromParameters(this.config, await this.hostParameters(), { backend });
  }

  /** λ of each layer, read back from the device (differential attention only; NaN for other variants). */
  async lambdaValues(): Promise<number[]> {
    this.#assertLive();
    return Promise.all(this.#attention.map((a) => (a instanceof DifferentialAttention ? a.lambda() : NaN)));
  }

  /**
   * Logits [B, T, V] (or [B, 1, V] with lastTokenOnly) for token ids. With a cache, the ids continue
   * the cached sequence and the cache advances by T. Intermediates are freed; the caller owns the result.
   */
  forward(ids: TokenIds, options: ForwardOptions = {}): Tensor {
    this.#assertLive();
    const rows = normaliseIds(ids, this.config.vocabSize);
    const batch = rows.length;
    const t = rows[0].length;
    const cache = options.cache;
    if (cache) {
      if (cache.isDisposed) throw new ArgumentError('forward cache', 'a live KV cache', 'a disposed one');
      if (cache.batch !== batch)
        throw new ArgumentError('forward ids batch', `${cache.batch} sequences (the cache's batch)`, batch);
      if (cache.layers.length !== this.config.numLayers) {
        throw new ArgumentError(
          'forward cache',
          `a cache made by this model (${this.config.numLayers} layers)`,
          `${cache.layers.length} layers`,
        );
      }
      if (t > cache.remaining) {
        throw new ArgumentError(
          'forward ids length',
          `at most ${cache.remaining} tokens (cache maxCapacity ${cache.maxCapacity})`,
          t,
        );
      }
      cache.reserve(cache.length + t);
    }
    const positionOffset = cache?.length ?? 0;
    const logits = tidy(() => {
      const flat = new Int32Array(batch * t);
      rows.forEach((row, i) => {
        flat.set(row, i * t);
      });
      let h = embedding(
        this.#parameters.get('embed_tokens.weight')!,
        tensor(flat, [batch, t], { backend: this.backend }),
      );
      this.blocks.forEach((block, i) => {
        h = block.forward(h, { rope: this.#rope, positionOffset, cache: cache?.layers[i] });
      });
      if (options.lastTokenOnly && t > 1) h = narrow(h, 1, t - 1, 1);
      h = rmsNorm(h, this.#parameters.get('norm.weight')!, this.config.normEps);
      const head = this.#parameters.get(this.config.tieWordEmbeddings ? 'embed_tokens.weight' : 'lm_head.weight')!;
      return linear(h, head);
    });
    if (cache) cache.length += t;
    return logits;
  }

  /**
   * The mean cross-entropy (natural log, per counted token) of next-token prediction: the logits of
   * `ids` [B, T] against `targets` [B, T] (usually the ids shifted by one). Targets equal to
   * `ignoreIndex` (default −100, as PyTorch) count for nothing. Returns a [1] float32 tensor; inside
   * valueAndGrads its gradient reaches every parameter. One fused kernel computes the loss and dLogits.
   */
  loss(ids: TokenIds, targets: TokenIds, options: { ignoreIndex?: number } = {}): Tensor {
    this.#assertLive();
    const ignoreIndex = options.ignoreIndex ?? -100;
    const rows = normaliseIds(ids, this.config.vocabSize);
    const flat = flattenTargets(rows, targets, this.config.vocabSize, ignoreIndex);
    let counted = 0;
    for (const target of flat) if (target !== ignoreIndex) counted++;
    if (counted === 0) throw new ArgumentError('loss targets', 'at least one target that is not ignoreIndex', 'none');
    return tidy(() => {
      const logits = this.forward(rows);
      const [b, t, v] = logits.shape;
      const targetIds = tensor(flat, [b * t], { backend: this.backend });
      return crossEntropy(reshape(logits, [b * t, v]), targetIds, { ignoreIndex, scale: 1 / counted });
    });
  }

  /** A KV cache for `batch` sequences with room for `capacity` tokens now; it grows as needed. */
  createCache(batch: number, capacity: number, options: KVCacheOptions = {}): KVCache {
    this.#assertLive();
    return new KVCache(
      this.backend,
      batch,
      capacity,
      this.#attention.map((a) => a.cacheShapes(batch, capacity)),
      options,
    );
  }

  /** Frees every parameter and table. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const t of this.#parameters.values()) t.dispose();
    for (const a of this.#attention) a.dispose?.();
    this.#rope.dispose();
  }

  #lookup(prefix: string): ParameterLookup {
    return (name) => {
      const t = this.#parameters.get(prefix + name);
      if (!t) throw new ArgumentError('parameter', `'${prefix + name}' to exist`, 'nothing');
      return t;
    };
  }

  #makeAttention(depth: number, param: ParameterLookup): AttentionModule {
    switch (this.config.attention) {
      case 'differential':
        return new DifferentialAttention(this.config, depth, param, this.backend);
      case 'differential-v2':
        return new DifferentialAttentionV2(this.config, param);
      case 'standard':
        return new StandardAttention(this.config, param);
    }
  }

  #assertLive(): void {
    if (this.#disposed) throw new ArgumentError('model', 'a live model', 'a disposed one');
  }
}

/** Targets [B, T] of the same shape as the ids, each in [0, vocab) or ignoreIndex, flattened row by row. */
function flattenTargets(ids: number[][], targets: TokenIds, vocabSize: number, ignoreIndex: number): Int32Array {
  const rows: readonly (readonly number[])[] =
    targets.length > 0 && Array.isArray(targets[0]) ? (targets as number[][]) : [targets as number[]];
  const t = ids[0].length;
  if (rows.length !== ids.length) {
    throw new ArgumentError('loss targets', `${ids.length} rows (as the ids)`, rows.length);
  }
  const flat = new Int32Array(ids.length * t);
  rows.forEach((row, i) => {
    if (row.length !== t) throw new ArgumentError(`loss targets row ${i} length`, `${t} (as the ids)`, row.length);
    row.forEach((target, j) => {
      if (target !== ignoreIndex && (!Number.isInteger(target) || target < 0 || target >= vocabSize)) {
        throw new ArgumentError(`loss target in row ${i}`, `an integer in [0, ${vocabSize}) or ${ignoreIndex}`, target);
      }
      flat[i * t + j] = target;
    });
  });
  return flat;
}

/** Checks ids on the host (a device kernel cannot throw): integers in [0, vocab), equal-length rows. */
function normaliseIds(ids: TokenIds, vocabSize: number): number[][] {
  const rows: number[][] = ids.length > 0 && Array.isArray(ids[0]) ? (ids as number[][]) : [ids as number[]];
  if (rows.length === 0 || rows[0].length === 0) throw new ArgumentError('token ids', 'at least one token', '[]');
  const t = rows[0].length;
  for (const [i, row] of rows.entries()) {
    if (row.length !== t)
      throw new ArgumentError(`token ids row ${i} length`, `${t} (every row equally long)`, row.length);
    for (const id of row) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new ArgumentError(`token id in row ${i}`, `an integer in [0, ${vocabSize})`, id);
      }
    }
  }
  return rows;
}
