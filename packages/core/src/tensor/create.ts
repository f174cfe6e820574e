import type { Backend } from '../backend/kernels.js';
import { activeBackend, isBackendDisposed } from '../backend/registry.js';
import { ArgumentError, BackendDisposedError, DTypeError, ShapeError } from '../errors.js';
import type { DType, HostArray } from './dtype.js';
import { assertValidShape, sizeOf } from './shape.js';
import { Tensor } from './tensor.js';

export interface CreateOptions {
  /** Defaults to float32, or int32 for an Int32Array. */
  dtype?: DType;
  /** Defaults to the active backend (see setBackend / ready). */
  backend?: Backend;
}

/** Uploads host values as a new tensor of the given shape. */
export function tensor(
  values: ArrayLike<number> | HostArray,
  shape: readonly number[],
  options: CreateOptions = {},
): Tensor {
  assertValidShape(shape);
  const dtype = options.dtype ?? (values instanceof Int32Array ? 'int32' : 'float32');
  const backend = options.backend ?? activeBackend();
  checkDType(backend, dtype);
  if (values.length !== sizeOf(shape)) {
    throw new ShapeError('tensor(values, shape)', `${values.length} values`, shape, `shape holds ${sizeOf(shape)}`);
  }
  let host: HostArray;
  if (dtype === 'int32') {
    host = values instanceof Int32Array ? values : Int32Array.from(values, (v) => checkInt(v));
  } else {
    host = values instanceof Float32Array ? values : Float32Array.from(values);
  }
  return Tensor.fromStorage(backend, backend.upload(host, dtype), shape, dtype);
}

/** A zero-filled tensor. */
export function zeros(shape: readonly number[], options: CreateOptions = {}): Tensor {
  assertValidShape(shape);
  const dtype = options.dtype ?? 'float32';
  const backend = options.backend ?? activeBackend();
  checkDType(backend, dtype);
  return Tensor.fromStorage(backend, backend.zeros(sizeOf(shape), dtype), shape, dtype);
}

function checkDType(backend: Backend, dtype: DType): void {
  // A released instance refuses new tensors as it refuses its old ones, on every backend alike.
  if (isBackendDisposed(backend)) throw new BackendDisposedError(backend.name, 'a new tensor');
  if (!backend.dtypes.includes(dtype)) {
    throw new DTypeError(`backend '${backend.name}' storage`, backend.dtypes.join(' | '), dtype);
  }
}

function checkInt(v: number): number {
  if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
    throw new ArgumentError('int32 tensor value', 'an integer in int32 range', v);
  }
  return v;
}
