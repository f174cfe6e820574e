/**
 * The reference's only data type: a dense row-major float64 array with its shape. Kept apart from
 * core's Tensor on purpose: the reference never touches a backend, so nothing it computes can be
 * affected by the code under test.
 */
export interface RefTensor {
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A reference tensor holding `values` (float32, int32 or plain numbers, widened to float64). */
export function refTensor(values: ArrayLike<number>, shape: readonly number[]): RefTensor {
  if (values.length !== elementCount(shape)) {
    throw new Error(`reference tensor: ${values.length} values do not fill shape [${shape.join(', ')}]`);
  }
  return { shape: [...shape], data: Float64Array.from(values) };
}

/** A zero-filled reference tensor. */
export function refZeros(shape: readonly number[]): RefTensor {
  return { shape: [...shape], data: new Float64Array(elementCount(shape)) };
}
