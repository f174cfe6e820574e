import { ArgumentError, ShapeError, formatShape } from '../errors.js';
import { resolveReshape } from '../tensor/shape.js';
import { type Tensor, storageView } from '../tensor/tensor.js';
import { assertSameDType, wrapOutput } from './dispatch.js';
import { runOp, runWithoutGradient } from './run.js';

/** A view of x with another shape over the same storage (row-major, no copy). One −1 is inferred. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const resolved = resolveReshape(x.shape, shape);
  return runOp('reshape', [x], {}, () => ({ y: storageView(x, resolved) }));
}

/** A copy of x restricted to [start, start + length) along `axis` (negative axes count from the end). */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = axis < 0 ? axis + x.rank : axis;
  return runOp('narrow', [x], { axis: a, start, length }, ({ kernel }) => {
    const { backend, impl } = kernel('narrow');
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
    return { y: wrapOutput(backend, impl(x, { axis: a, start, length }, out), out) };
  });
}

/**
 * Writes values [B, T, ...rest] into cache [B, Smax, ...rest] at rows [position, position + T), in place.
 * The only kernel that mutates a tensor: KV caches are preallocated and filled step by step.
 */
export function cacheWrite(cache: Tensor, values: Tensor, position: number): void {
  runWithoutGradient('cacheWrite', [cache, values], ({ kernel }) => {
    const { impl } = kernel('cacheWrite');
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
    impl(cache, values, { position });
    cache.markWritten();
  });
}
