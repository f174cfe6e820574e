import { cacheWrite } from '../../ops/memory.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { AttentionContext } from './module.js';

/**
 * Keys and values to attend to: without a cache, the ones just computed; with one, the new ones are
 * written at the current position and the whole valid prefix of the cache is used.
 */
export function keysAndValues(
  k: Tensor,
  v: Tensor,
  context: AttentionContext,
): { k: Tensor; v: Tensor; keyOffset: number; keyLength: number } {
  const t = k.shape[1];
  if (!context.cache) return { k, v, keyOffset: 0, keyLength: t };
  cacheWrite(context.cache.k, k, context.positionOffset);
  cacheWrite(context.cache.v, v, context.positionOffset);
  return {
    k: context.cache.k,
    v: context.cache.v,
    keyOffset: context.positionOffset,
    keyLength: context.positionOffset + t,
  };
}
