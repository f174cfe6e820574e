/**
 * Autoregressive generation with the KV cache: one forward over the prompt (prefill), then one token
 * per step, each attending to the cache. Yields token ids as they are chosen.
 */
import { ArgumentError } from '../errors.js';
import { createRandom } from '../util/random.js';
import type { DiffTransformer } from './model.js';
import type { SamplingOptions } from './sampling.js';
import { pickTokens, validateSampling } from './sampling.js';

export interface GenerateOptions extends SamplingOptions {
  /** How many tokens to add at most. */
  maxNewTokens: number;
  /** Seed of the sampling generator (ignored when greedy). Default 0. */
  seed?: number;
  /** Stop after any of these ids is produced (it is still yielded). */
  stopTokens?: readonly number[];
}

/** Tokens of room the cache starts with beyond the prompt; it doubles from there. */
const INITIAL_ROOM = 128;

export async function* generate(
  model: DiffTransformer,
  prompt: readonly number[],
  options: GenerateOptions,
): AsyncGenerator<number, void, undefined> {
  validateSampling(options);
  if (!Number.isInteger(options.maxNewTokens) || options.maxNewTokens < 0) {
    throw new ArgumentError('maxNewTokens', 'an integer ≥ 0', options.maxNewTokens);
  }
  if (prompt.length === 0) throw new ArgumentError('prompt', 'at least one token id', '[]');
  if (options.maxNewTokens === 0) return;
  const random = createRandom(options.seed ?? 0);
  const stop = new Set(options.stopTokens ?? []);
  // The last new token is never fed back, so the cache needs room for prompt + maxNewTokens − 1 at
  // most; it starts smaller and grows as tokens come, so memory follows what is generated.
  const most = prompt.length + options.maxNewTokens - 1;
  const cache = model.createCache(1, Math.min(most, prompt.length + INITIAL_ROOM), { maxCapacity: most });
  try {
    let input: number[] = [...prompt];
    for (let step = 0; step < options.maxNewTokens; step++) {
      const logits = model.forward([input], { cache, lastTokenOnly: true });
      let next: number;
      try {
        [next] = await pickTokens(logits, options, random);
      } finally {
        logits.dispose();
      }
      yield next;
      if (stop.has(next)) return;
      input = [next];
    }
  } finally {
    cache.dispose();
  }
}
