import type { AdamWAttrs, Kernels } from '../backend/kernels.js';
import { ArgumentError, ShapeError, formatShape } from '../errors.js';
import { shapesEqual } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertDType, assertFloat, assertSameDType } from './dispatch.js';
import { runWithoutGradient } from './run.js';

/**
 * One AdamW step in place (see AdamWAttrs): param, and its float32 moments m and v, are updated from
 * grad. The optimiser's state lives on the device; nothing is read back.
 */
export function adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, attrs: AdamWAttrs): void {
  runWithoutGradient('adamw', [param, grad, m, v], ({ kernel }) =>
    adamwStep(kernel('adamw').impl, param, grad, m, v, attrs),
  );
}

function adamwStep(impl: Kernels['adamw'], param: Tensor, grad: Tensor, m: Tensor, v: Tensor, attrs: AdamWAttrs): void {
  assertFloat('adamw param', param);
  assertSameDType('adamw grad', param, grad);
  assertDType('adamw m', m, 'float32');
  assertDType('adamw v', v, 'float32');
  for (const [name, t] of [
    ['grad', grad],
    ['m', m],
    ['v', v],
  ] as const) {
    if (!shapesEqual(t.shape, param.shape)) {
      throw new ShapeError(`adamw ${name}`, formatShape(param.shape), t.shape, 'as the parameter');
    }
  }
  const { learningRate, beta1, beta2, eps, weightDecay, step, gradScale } = attrs;
  const finite = (name: string, x: number, ok: boolean, range: string) => {
    if (!Number.isFinite(x) || !ok) throw new ArgumentError(`adamw ${name}`, range, x);
  };
  finite('learningRate', learningRate, learningRate >= 0, 'a finite number ≥ 0');
  finite('beta1', beta1, beta1 >= 0 && beta1 < 1, 'a number in [0, 1)');
  finite('beta2', beta2, beta2 >= 0 && beta2 < 1, 'a number in [0, 1)');
  finite('eps', eps, eps > 0, 'a finite number > 0');
  finite('weightDecay', weightDecay, weightDecay >= 0, 'a finite number ≥ 0');
  finite('gradScale', gradScale, true, 'a finite number');
  if (!Number.isInteger(step) || step < 1) throw new ArgumentError('adamw step', 'an integer ≥ 1', step);
  impl(param, grad, m, v, { learningRate, beta1, beta2, eps, weightDecay, step, gradScale });
  param.markWritten();
  m.markWritten();
  v.markWritten();
}
