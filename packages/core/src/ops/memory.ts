import { recordingTape, refuseOnTape } from '../autograd/tape.js';
import { ArgumentError, ShapeError, formatShape } from '../errors.js';
import { zeros } from '../tensor/create.js';
import { sizeOf } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertSameDType, kernelFor, wrapOutput } from './dispatch.js';

/** A copy of x restricted to [start, start + length) along `axis` (negative axes count from the end). */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const { backend, impl } = kernelFor('narrow', [x]);
  const a = axis < 0 ? axis + x.rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= x.rank)
    throw new ArgumentError('narrow axis', `an axis of ${formatShape(x.shape)}`, axis);
  const dim = x.shape[a];
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > dim) {
    throw new ArgumentError(
      'narrow range',
      `[start, start + length) within [0, ${dim})`,
      `[${start}, ${start + length})`,
    );
  }
  const shape = [...x.shape];
  shape[a] = length;
  const out = { shape, dtype: x.dtype };
  const y = wrapOutput(backend, impl(x, { axis: a, start, length }, out), out);
  recordingTape([x])?.record('narrow', [x], [y], ([dy]) => [dy && narrowGradient(x.shape, a, start, dy)]);
  return y;
}

/**
 * The gradient of narrow: zeros of the input's shape with dy written at [start, start + length) of the
 * axis. Viewed as [outer, axis, inner], that is cacheWrite's own layout (rows along dimension 1).
 */
function narrowGradient(shape: readonly number[], axis: number, start: number, dy: Tensor): Tensor {
  const outer = sizeOf(shape.slice(0, axis));
  const inner = sizeOf(shape.slice(axis + 1));
  const dx = zeros(shape, { backend: dy.backend, dtype: dy.dtype });
  const target = dx.reshape([outer, shape[axis], inner]);
  const values = dy.reshape([outer, dy.shape[axis], inner]);
  cacheWrite(target, values, start);
  target.dispose();
  values.dispose();
  return dx;
}

/**
 * Writes values [B, T, ...rest] into cache [B, Smax, ...rest] at rows [position, position + T), in place.
 * The only kernel that mutates a tensor: KV caches are preallocated and filled step by step.
 */
export function cacheWrite(cache: Tensor, values: Tensor, position: number): void {
  const { impl } = kernelFor('cacheWrite', [cache, values]);
  assertSameDType('cacheWrite values', cache, values);
  const expected = [cache.shape[0], values.shape[1], ...cache.shape.slice(2)];
  if (cache.rank < 2 || values.rank !== cache.rank || values.shape.some((d, i) => i !== 1 && d !== cache.shape[i])) {
    throw new ShapeError(
      'cacheWrite values',
      formatShape(expected),
      values.shape,
      `cache is ${formatShape(cache.shape)}`,
    );
  }
  if (!Number.isInteger(position) || position < 0 || position + values.shape[1] > cache.shape[1]) {
    throw new ArgumentError(
      'cacheWrite position',
      `an integer with position + ${values.shape[1]} ≤ ${cache.shape[1]} (cache capacity)`,
      position,
    );
  }
  refuseOnTape('cacheWrite', [cache, values], 'it writes a tensor in place');
  impl(cache, values, { position });
  cache.markWritten();
}
