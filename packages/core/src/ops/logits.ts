import { ArgumentError, ShapeError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertFloat, wrapOutput } from './dispatch.js';
import { runWithoutGradient } from './run.js';

/** softmax(x / temperature) over the last dimension. */
export function softmax(x: Tensor, temperature = 1): Tensor {
  return runWithoutGradient('softmax', [x], ({ kernel }) => {
    const { backend, impl } = kernel('softmax');
    assertFloat('softmax x', x);
    if (x.rank < 1 || x.shape[x.rank - 1] < 1) throw new ShapeError('softmax x', '[..., N ≥ 1]', x.shape);
    if (!(temperature > 0) || !Number.isFinite(temperature)) {
      throw new ArgumentError('softmax temperature', 'a finite number > 0', temperature);
    }
    const out = { shape: x.shape, dtype: x.dtype };
    return wrapOutput(backend, impl(x, { temperature }, out), out);
  });
}

/** Index of the largest value over the last dimension (int32; ties go to the lowest index). */
export function argmax(x: Tensor): Tensor {
  return runWithoutGradient('argmax', [x], ({ kernel }) => {
    const { backend, impl } = kernel('argmax');
    assertFloat('argmax x', x);
    if (x.rank < 1 || x.shape[x.rank - 1] < 1) throw new ShapeError('argmax x', '[..., N ≥ 1]', x.shape);
    const out = { shape: x.shape.slice(0, -1), dtype: 'int32' as const };
    return wrapOutput(backend, impl(x, {}, out), out);
  });
}
