import type { RotaryLayout } from '../backend/kernels.js';
import { recordingTape } from '../autograd/tape.js';
import { ArgumentError, ShapeError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertFloat, kernelFor, wrapOutput } from './dispatch.js';
import { scale } from './elementwise.js';

export interface RotaryOptions {
  layout: RotaryLayout;
  /** Row of the tables used by token 0 (the number of tokens already in the KV cache). */
  positionOffset?: number;
}

/**
 * Rotary position embedding of x [B, T, H, d] with tables cos, sin [P, r/2] (r ≤ d); see RotaryAttrs.
 */
export function rotary(x: Tensor, cos: Tensor, sin: Tensor, options: RotaryOptions): Tensor {
  const { backend, impl } = kernelFor('rotary', [x, cos, sin]);
  assertFloat('rotary x', x);
  assertFloat('rotary cos', cos);
  assertFloat('rotary sin', sin);
  if (x.rank !== 4) throw new ShapeError('rotary x', '[B, T, H, d]', x.shape);
  const [, t, , d] = x.shape;
  if (cos.rank !== 2) throw new ShapeError('rotary cos', '[positions, rotaryDim/2]', cos.shape);
  if (sin.rank !== 2 || sin.shape[0] !== cos.shape[0] || sin.shape[1] !== cos.shape[1]) {
    throw new ShapeError('rotary sin', `[${cos.shape.join(', ')}] (as cos)`, sin.shape);
  }
  const half = cos.shape[1];
  if (2 * half > d) throw new ShapeError('rotary cos', `[positions, ≤ ${d / 2}]`, cos.shape, `head width is ${d}`);
  if (options.layout !== 'interleaved' && options.layout !== 'half') {
    throw new ArgumentError('rotary layout', "'interleaved' | 'half'", options.layout);
  }
  const positionOffset = options.positionOffset ?? 0;
  if (!Number.isInteger(positionOffset) || positionOffset < 0) {
    throw new ArgumentError('rotary positionOffset', 'an integer ≥ 0', positionOffset);
  }
  if (positionOffset + t > cos.shape[0]) {
    throw new ShapeError(
      'rotary cos',
      `[≥ ${positionOffset + t}, ${half}]`,
      cos.shape,
      'the tables are shorter than the positions used',
    );
  }
  const out = { shape: x.shape, dtype: x.dtype };
  const y = wrapOutput(backend, impl(x, cos, sin, { layout: options.layout, positionOffset }, out), out);
  const tape = recordingTape([x]);
  if (tape) {
    const [c, s] = [tape.save(cos), tape.save(sin)];
    // The rotation is orthogonal: its gradient is the inverse rotation, the same kernel with −sin.
    // The tables are constants of the model (no gradient).
    tape.record('rotary', [x, cos, sin], [y], ([dy]) => [
      dy && rotary(dy, c, scale(s, -1, 0), { layout: options.layout, positionOffset }),
      null,
      null,
    ]);
  }
  return y;
}
