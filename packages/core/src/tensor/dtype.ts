/**
 * Element types. float16 and bfloat16 are storage types a device backend may keep (with float32
 * accumulation); on the host they are always seen as float32.
 */
export type DType = 'float32' | 'float16' | 'bfloat16' | 'int32';

/** What `await tensor.data()` returns: float types read back as float32, int32 as int32. */
export type HostArray = Float32Array | Int32Array;

export function isFloatDType(dtype: DType): boolean {
  return dtype !== 'int32';
}

export function bytesPerElement(dtype: DType): number {
  return dtype === 'float16' || dtype === 'bfloat16' ? 2 : 4;
}
