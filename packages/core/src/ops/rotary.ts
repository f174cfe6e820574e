import type { RotaryAttrs, RotaryLayout } from '../backend/kernels.js';
import { ArgumentError, ShapeError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertFloat, wrapOutput } from './dispatch.js';
import { runOp } from './run.js';

export interface RotaryOptions {
  layout: RotaryLayout;
  /** Row of the tables used by token 0 (the number of tokens already in the KV cache). */
  positionOffset?: number;
}

/**
 * Rotary position embedding of x [B, T, H, d] with tables cos, sin [P, r/2] (r ≤ d); see RotaryAttrs.
 */
export function rotary(x: Tensor, cos: Tensor, sin: Tensor, options: RotaryOptions): Tensor {
  const attrs: RotaryAttrs = { layout: options.layout, positionOffset: options.positionOffset ?? 0 };
  return runOp('rotary', [x, cos, sin], attrs, ({ kernel }) => {
    const { backend, impl } = kernel('rotary');
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
    if (attrs.layout !== 'interleaved' && attrs.layout !== 'half') {
      throw new ArgumentError('rotary layout', "'interleaved' | 'half'", attrs.layout);
    }
    const { positionOffset } = attrs;
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
    return { y: wrapOutput(backend, impl(x, cos, sin, attrs, out), out) };
  });
}
