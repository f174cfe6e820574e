import type { Backend, StorageHandle, TensorView } from '../backend/kernels.js';
import { initializedBackend, isBackendDisposed } from '../backend/registry.js';
import { BackendDisposedError, DTypeError, DisposedTensorError, formatShape } from '../errors.js';
import type { DType, HostArray } from './dtype.js';
import { TENSOR_BRAND, track } from './scope.js';
import { sizeOf } from './shape.js';
import { StorageRef } from './storage.js';

let nextId = 0;

/** Made in Tensor's static block, where its private storage is visible; see storageView. */
let makeView: (t: Tensor, shape: readonly number[]) => Tensor;

/**
 * A tensor is a handle: shape, dtype and the backend that owns its storage. The data stays on that
 * backend; `await t.data()` is the only way back to the host, and `await t.to(other)` the only way to
 * another backend.
 */
export class Tensor implements TensorView {
  readonly [TENSOR_BRAND] = true as const;
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number;
  #ref: StorageRef | null;

  /** Wraps a storage the backend just produced (or shares `ref` for a view). Not for end users. */
  constructor(ref: StorageRef, shape: readonly number[]) {
    this.#ref = ref;
    this.shape = Object.freeze([...shape]);
    this.dtype = ref.dtype;
    this.size = sizeOf(shape);
    track(this);
  }

  /** Makes a tensor around a fresh storage handle. */
  static fromStorage(backend: Backend, handle: StorageHandle, shape: readonly number[], dtype: DType): Tensor {
    return new Tensor(new StorageRef(backend, handle, dtype, sizeOf(shape)), shape);
  }

  get rank(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this.#ref === null;
  }

  /** The owning backend. Throws after dispose. */
  get backend(): Backend {
    return this.#live().backend;
  }

  /** The backend's storage handle, as kernels see it. Throws after dispose. */
  get storage(): StorageHandle {
    return this.#live().handle;
  }

  /** Reads the values back to the host (float types as Float32Array, int32 as Int32Array). */
  async data(): Promise<HostArray> {
    const ref = this.#live();
    // Hold the storage while the read is in flight, so a dispose() meanwhile cannot free it under us.
    ref.retain();
    try {
      return await ref.backend.read(ref.handle, ref.dtype, this.size);
    } finally {
      ref.release();
    }
  }

  /**
   * The values of a float tensor (float32, float16, bfloat16) as a Float32Array, typed as such; throws
   * DTypeError for an int32 tensor (read that with dataInt()).
   */
  async dataFloat(): Promise<Float32Array> {
    if (this.dtype === 'int32')
      throw new DTypeError(`Tensor#${this.id}.dataFloat()`, 'float32, float16 or bfloat16', this.dtype);
    return (await this.data()) as Float32Array;
  }

  /** The values of an int32 tensor as an Int32Array, typed as such; throws DTypeError for a float tensor. */
  async dataInt(): Promise<Int32Array> {
    if (this.dtype !== 'int32') throw new DTypeError(`Tensor#${this.id}.dataInt()`, 'int32', this.dtype);
    return (await this.data()) as Int32Array;
  }

  /** The values as a plain number array (convenience for small tensors). */
  async array(): Promise<number[]> {
    return Array.from(await this.data());
  }

  /** How many in-place kernels (cacheWrite, adamw) have written the storage so far. */
  get version(): number {
    return this.#live().version;
  }

  /** Marks the storage as written in place; called by the in-place ops. Not for end users. */
  markWritten(): void {
    this.#live().version++;
  }

  /** Copies this tensor to another backend (by name or instance); the original stays where it is. */
  async to(target: string | Backend): Promise<Tensor> {
    const ref = this.#live();
    const backend = typeof target === 'string' ? await initializedBackend(target) : target;
    if (!backend.dtypes.includes(ref.dtype)) {
      throw new DTypeError(`tensor.to('${backend.name}')`, backend.dtypes.join(' | '), ref.dtype);
    }
    const host = await this.data();
    return Tensor.fromStorage(backend, backend.upload(host, ref.dtype), this.shape, ref.dtype);
  }

  /** Frees this handle; the storage goes when no view shares it any more. Safe to call twice. */
  dispose(): void {
    if (this.#ref === null) return;
    const ref = this.#ref;
    this.#ref = null;
    ref.release();
  }

  toString(): string {
    const where = this.#ref ? this.#ref.backend.name : 'disposed';
    return `Tensor#${this.id}(${formatShape(this.shape)}, ${this.dtype}, ${where})`;
  }

  static {
    makeView = (t, shape) => {
      const ref = t.#live();
      ref.retain();
      return new Tensor(ref, shape);
    };
  }

  #live(): StorageRef {
    if (this.#ref === null) {
      throw new DisposedTensorError(`Tensor#${this.id}(${formatShape(this.shape)}, ${this.dtype})`);
    }
    if (isBackendDisposed(this.#ref.backend)) {
      throw new BackendDisposedError(
        this.#ref.backend.name,
        `Tensor#${this.id}(${formatShape(this.shape)}, ${this.dtype})`,
      );
    }
    return this.#ref;
  }
}

/**
 * Another handle on t's storage (no copy), in t's shape or another of the same size, disposed on its
 * own. Core's alone, not exported from the package: it records nothing, so ops.reshape is the view
 * users make, and the tape uses this to hold what a rule saves.
 */
export function storageView(t: Tensor, shape: readonly number[] = t.shape): Tensor {
  return makeView(t, shape);
}
