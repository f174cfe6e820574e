/**
 * The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of UTF-8
 * JSON mapping each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets relative to
 * the data that follows the header) plus an optional "__metadata__" of string → string, then the data.
 *
 * The parser checks everything before any tensor is read: the header length against the file, the
 * JSON, every entry's form and dtype, every byte range against the data and against the others, and
 * every byte length against shape × dtype. So a tensor read can only allocate what the file holds
 * (twice that for half types widened to float32). Tensors are read one at a time, in pieces of at
 * most 64 MiB, so files (and tensors) larger than 2 GiB never pass through one buffer.
 */
import { sizeOf } from '../tensor/shape.js';
import type { ByteSource } from './byte-source.js';
import {
  CheckpointError,
  SafetensorsHeaderError,
  TensorByteSizeError,
  TensorOffsetError,
  UnknownDTypeError,
} from './errors.js';
import { bfloat16BitsToFloat32, float16BitsToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits } from './half.js';

/** The dtypes this reader and writer handle. */
export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8';

const SAFETENSORS_DTYPES: readonly SafetensorsDType[] = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'U8'];

const WIDTH: Record<SafetensorsDType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1 };

/** The format's own limit on the header (100 MB), which also bounds what a hostile header can cost. */
const MAX_HEADER_BYTES = 100_000_000;
/** Largest piece read from the source at once. */
const PIECE_BYTES = 64 * 1024 * 1024;

export function isFloatSafetensorsDType(dtype: SafetensorsDType): boolean {
  return dtype === 'F64' || dtype === 'F32' || dtype === 'F16' || dtype === 'BF16';
}

/** One tensor's header entry, validated. Offsets are absolute positions in the file. */
export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** Element count (product of the shape). */
  readonly size: number;
  /** Absolute byte range [begin, end) in the file. */
  readonly begin: number;
  readonly end: number;
}

/** What `read` returns per dtype: half types are widened to float32. */
export type SafetensorsArray = Float64Array | Float32Array | Int32Array | BigInt64Array | Uint8Array;

export interface SafetensorsFile {
  readonly name: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Every tensor, in the order of their data in the file. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>;
  /**
   * The tensor's values: F64 → Float64Array, F32/F16/BF16 → Float32Array, I64 → BigInt64Array,
   * I32 → Int32Array, U8 → Uint8Array.
   */
  read(name: string): Promise<SafetensorsArray>;
  /** A float tensor's values as float32 (F64 rounded, half types widened). */
  readFloat32(name: string): Promise<Float32Array>;
  /** A float tensor's values as float64 (exact for every float dtype). */
  readFloat64(name: string): Promise<Float64Array>;
  close(): Promise<void>;
}

/**
 * Parses and validates the header of a safetensors source. Throws CheckpointError subclasses only.
 * `pieceBytes` (default 64 MiB) bounds each read from the source.
 */
export async function openSafetensors(
  source: ByteSource,
  options: { pieceBytes?: number } = {},
): Promise<SafetensorsFile> {
  try {
    const header = await parseHeader(source);
    return makeFile(source, header.metadata, header.tensors, Math.max(8, options.pieceBytes ?? PIECE_BYTES));
  } catch (error) {
    await source.close?.().catch(() => {});
    throw error;
  }
}

async function parseHeader(
  source: ByteSource,
): Promise<{ metadata: Record<string, string>; tensors: Map<string, SafetensorsTensorInfo> }> {
  const file = source.name;
  if (source.size < 8) {
    throw new SafetensorsHeaderError(
      'length',
      file,
      null,
      `the file is ${source.size} bytes, shorter than the 8-byte header length`,
    );
  }
  const prefix = await source.read(0, 8);
  const declared = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(source.size - 8)) {
    throw new SafetensorsHeaderError(
      'length',
      file,
      null,
      `the header length ${declared} runs past the end of the file (${source.size - 8} bytes follow the length)`,
    );
  }
  const headerLength = Number(declared);
  if (headerLength > MAX_HEADER_BYTES) {
    throw new SafetensorsHeaderError(
      'length',
      file,
      null,
      `the header length ${headerLength} exceeds the format's limit of ${MAX_HEADER_BYTES} bytes`,
    );
  }
  if (headerLength < 2)
    throw new SafetensorsHeaderError(
      'length',
      file,
      null,
      `the header length ${headerLength} is too short for a JSON object`,
    );
  const headerBytes = await source.read(8, headerLength);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (error) {
    throw new SafetensorsHeaderError(
      'json',
      file,
      null,
      `the header is not valid UTF-8 JSON (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SafetensorsHeaderError(
      'json',
      file,
      null,
      `the header must be a JSON object, got ${Array.isArray(json) ? 'an array' : typeof json}`,
    );
  }
  const dataStart = 8 + headerLength;
  const dataLength = source.size - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
        throw new SafetensorsHeaderError('metadata', file, null, '__metadata__ must be an object of strings');
      }
      for (const [key, value] of Object.entries(entry)) {
        if (typeof value !== 'string') {
          throw new SafetensorsHeaderError(
            'metadata',
            file,
            null,
            `__metadata__.${key} must be a string, got ${value === null ? 'null' : typeof value}`,
          );
        }
        metadata[key] = value;
      }
      continue;
    }
    tensors.push(parseEntry(file, name, entry, dataStart, dataLength));
  }
  // Byte ranges may leave gaps but never overlap (empty tensors occupy nothing).
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let previous: SafetensorsTensorInfo | null = null;
  for (const t of tensors) {
    if (t.end === t.begin) continue;
    if (previous && t.begin < previous.end) {
      throw new TensorOffsetError(
        'overlap',
        file,
        t.name,
        `its bytes [${t.begin - dataStart}, ${t.end - dataStart}) ` +
          `overlap those of '${previous.name}' [${previous.begin - dataStart}, ${previous.end - dataStart})`,
      );
    }
    previous = t;
  }
  return { metadata, tensors: new Map(tensors.map((t) => [t.name, t])) };
}

function parseEntry(
  file: string,
  name: string,
  entry: unknown,
  dataStart: number,
  dataLength: number,
): SafetensorsTensorInfo {
  const bad = (message: string) => new SafetensorsHeaderError('entry', file, name, message);
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
    throw bad('the header entry must be an object {dtype, shape, data_offsets}');
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== 'string') throw bad(`dtype must be a string, got ${JSON.stringify(dtype) ?? 'nothing'}`);
  if (!(SAFETENSORS_DTYPES as readonly string[]).includes(dtype))
    throw new UnknownDTypeError(file, name, dtype, SAFETENSORS_DTYPES);
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw bad(`shape must be an array of non-negative integers, got ${JSON.stringify(shape) ?? 'nothing'}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => !Number.isSafeInteger(o) || o < 0)) {
    throw bad(`data_offsets must be two non-negative integers, got ${JSON.stringify(offsets) ?? 'nothing'}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end)
    throw new TensorOffsetError('range', file, name, `data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataLength) {
    throw new TensorOffsetError(
      'range',
      file,
      name,
      `data_offsets [${begin}, ${end}] run past the ${dataLength} data bytes of the file`,
    );
  }
  const width = WIDTH[dtype as SafetensorsDType];
  let size = 1;
  for (const d of shape as number[]) size *= d;
  const expected = size * width;
  if (!Number.isSafeInteger(expected) || expected !== end - begin) {
    throw new TensorByteSizeError(
      file,
      name,
      expected,
      end - begin,
      `shape [${(shape as number[]).join(', ')}] of ${dtype}`,
    );
  }
  return {
    name,
    dtype: dtype as SafetensorsDType,
    shape: Object.freeze([...(shape as number[])]),
    size,
    begin: dataStart + begin,
    end: dataStart + end,
  };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function makeFile(
  source: ByteSource,
  metadata: Record<string, string>,
  tensors: Map<string, SafetensorsTensorInfo>,
  pieceBytes: number,
): SafetensorsFile {
  const file = source.name;
  const info = (name: string): SafetensorsTensorInfo => {
    const t = tensors.get(name);
    if (!t)
      throw new CheckpointError(
        'SAFETENSORS_NO_TENSOR',
        file,
        name,
        `no such tensor; the file holds ${tensors.size} tensor(s)`,
      );
    return t;
  };
  const read = async (name: string, as?: 'float32' | 'float64'): Promise<SafetensorsArray> => {
    const t = info(name);
    if (as && !isFloatSafetensorsDType(t.dtype)) {
      throw new CheckpointError(
        'SAFETENSORS_NOT_FLOAT',
        file,
        name,
        `is ${t.dtype}, a float tensor (F64, F32, F16, BF16) was expected`,
      );
    }
    const out = allocate(t, as);
    const width = WIDTH[t.dtype];
    const elementsPerPiece = Math.floor(pieceBytes / width);
    for (let first = 0; first < t.size; first += elementsPerPiece) {
      const count = Math.min(elementsPerPiece, t.size - first);
      const bytes = await source.read(t.begin + first * width, count * width);
      if (bytes.length !== count * width) {
        throw new CheckpointError(
          'SAFETENSORS_SHORT_READ',
          file,
          name,
          `the source returned ${bytes.length} bytes where ${count * width} were asked for`,
        );
      }
      decode(t.dtype, bytes, out, first, count);
    }
    return out;
  };
  return {
    name: file,
    metadata: Object.freeze({ ...metadata }),
    tensors,
    read: (name) => read(name),
    readFloat32: (name) => read(name, 'float32') as Promise<Float32Array>,
    readFloat64: (name) => read(name, 'float64') as Promise<Float64Array>,
    close: async () => {
      await source.close?.();
    },
  };
}

function allocate(t: SafetensorsTensorInfo, as?: 'float32' | 'float64'): SafetensorsArray {
  if (as === 'float32') return new Float32Array(t.size);
  if (as === 'float64') return new Float64Array(t.size);
  switch (t.dtype) {
    case 'F64':
      return new Float64Array(t.size);
    case 'F32':
    case 'F16':
    case 'BF16':
      return new Float32Array(t.size);
    case 'I64':
      return new BigInt64Array(t.size);
    case 'I32':
      return new Int32Array(t.size);
    case 'U8':
      return new Uint8Array(t.size);
  }
}

/** Decodes `count` little-endian elements of `dtype` from `bytes` into out[first …]. */
function decode(dtype: SafetensorsDType, bytes: Uint8Array, out: SafetensorsArray, first: number, count: number): void {
  if (dtype === 'U8') {
    (out as Uint8Array).set(bytes, first);
    return;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const aligned = bytes.byteOffset % WIDTH[dtype] === 0;
  switch (dtype) {
    case 'F32':
      if (LITTLE_ENDIAN && out instanceof Float32Array) {
        out.set(
          aligned ? new Float32Array(bytes.buffer, bytes.byteOffset, count) : new Float32Array(bytes.slice().buffer),
          first,
        );
      } else
        for (let i = 0; i < count; i++) (out as Float32Array | Float64Array)[first + i] = view.getFloat32(4 * i, true);
      return;
    case 'F64':
      if (LITTLE_ENDIAN && out instanceof Float64Array) {
        out.set(
          aligned ? new Float64Array(bytes.buffer, bytes.byteOffset, count) : new Float64Array(bytes.slice().buffer),
          first,
        );
      } else
        for (let i = 0; i < count; i++) (out as Float32Array | Float64Array)[first + i] = view.getFloat64(8 * i, true);
      return;
    case 'F16':
      for (let i = 0; i < count; i++)
        (out as Float32Array | Float64Array)[first + i] = float16BitsToFloat32(view.getUint16(2 * i, true));
      return;
    case 'BF16':
      for (let i = 0; i < count; i++)
        (out as Float32Array | Float64Array)[first + i] = bfloat16BitsToFloat32(view.getUint16(2 * i, true));
      return;
    case 'I32':
      for (let i = 0; i < count; i++) (out as Int32Array)[first + i] = view.getInt32(4 * i, true);
      return;
    case 'I64':
      for (let i = 0; i < count; i++) (out as BigInt64Array)[first + i] = view.getBigInt64(8 * i, true);
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/** A tensor to write. Float data is converted to `dtype` (default: F32 for Float32Array, F64 for Float64Array, …). */
export interface SafetensorsEntry {
  readonly shape: readonly number[];
  readonly data: Float64Array | Float32Array | Int32Array | BigInt64Array | Uint8Array;
  readonly dtype?: SafetensorsDType;
}

/** The pieces of a safetensors file, in order: the header (with its length prefix), then each tensor's bytes. */
export interface SafetensorsLayout {
  readonly header: Uint8Array;
  readonly tensors: ReadonlyArray<{ name: string; byteLength: number; bytes: () => Uint8Array }>;
  readonly totalBytes: number;
}

function defaultDType(data: SafetensorsEntry['data']): SafetensorsDType {
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof BigInt64Array) return 'I64';
  return 'U8';
}

/**
 * Lays a file out: tensors in the given order, the header padded with spaces to a multiple of 8 bytes
 * (so every tensor starts 8-aligned), metadata first. Validates names, shapes and dtypes.
 */
export function layoutSafetensors(
  entries: Iterable<readonly [string, SafetensorsEntry]>,
  metadata: Readonly<Record<string, string>> = {},
  file = 'safetensors',
): SafetensorsLayout {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string')
        throw new SafetensorsHeaderError('metadata', file, null, `metadata ${key} must be a string`);
    }
    header.__metadata__ = { ...metadata };
  }
  const tensors: Array<{ name: string; byteLength: number; bytes: () => Uint8Array }> = [];
  let offset = 0;
  for (const [name, entry] of entries) {
    if (name === '__metadata__' || name.length === 0 || name in header) {
      throw new SafetensorsHeaderError(
        'entry',
        file,
        name,
        name in header ? 'the name is used twice' : 'not a valid tensor name',
      );
    }
    const dtype = entry.dtype ?? defaultDType(entry.data);
    if (!(SAFETENSORS_DTYPES as readonly string[]).includes(dtype))
      throw new UnknownDTypeError(file, name, dtype, SAFETENSORS_DTYPES);
    if (entry.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new SafetensorsHeaderError(
        'entry',
        file,
        name,
        `shape [${entry.shape.join(', ')}] must hold non-negative integers`,
      );
    }
    const size = sizeOf(entry.shape);
    if (size !== entry.data.length) {
      throw new TensorByteSizeError(
        file,
        name,
        size * WIDTH[dtype],
        entry.data.length * WIDTH[dtype],
        `shape [${entry.shape.join(', ')}] of ${dtype}`,
      );
    }
    checkConvertible(file, name, entry.data, dtype);
    const byteLength = size * WIDTH[dtype];
    header[name] = { dtype, shape: [...entry.shape], data_offsets: [offset, offset + byteLength] };
    tensors.push({ name, byteLength, bytes: () => encode(dtype, entry.data) });
    offset += byteLength;
  }
  let json = JSON.stringify(header);
  const encoder = new TextEncoder();
  let jsonBytes = encoder.encode(json);
  const padding = (8 - (jsonBytes.length % 8)) % 8;
  if (padding) {
    json += ' '.repeat(padding);
    jsonBytes = encoder.encode(json);
  }
  const head = new Uint8Array(8 + jsonBytes.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  head.set(jsonBytes, 8);
  return { header: head, tensors, totalBytes: head.length + offset };
}

/** A whole safetensors file in memory. */
export function serializeSafetensors(
  entries: Iterable<readonly [string, SafetensorsEntry]>,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  const layout = layoutSafetensors(entries, metadata);
  const out = new Uint8Array(layout.totalBytes);
  out.set(layout.header, 0);
  let at = layout.header.length;
  for (const t of layout.tensors) {
    out.set(t.bytes(), at);
    at += t.byteLength;
  }
  return out;
}

function checkConvertible(file: string, name: string, data: SafetensorsEntry['data'], dtype: SafetensorsDType): void {
  const isFloat = data instanceof Float32Array || data instanceof Float64Array;
  const ok =
    (isFloatSafetensorsDType(dtype) && isFloat) ||
    (dtype === 'I32' && data instanceof Int32Array) ||
    (dtype === 'I64' && (data instanceof BigInt64Array || data instanceof Int32Array)) ||
    (dtype === 'U8' && data instanceof Uint8Array);
  if (!ok)
    throw new CheckpointError(
      'SAFETENSORS_DTYPE_DATA',
      file,
      name,
      `cannot write ${data.constructor.name} data as ${dtype}`,
    );
}

function encode(dtype: SafetensorsDType, data: SafetensorsEntry['data']): Uint8Array {
  const n = data.length;
  const out = new Uint8Array(n * WIDTH[dtype]);
  const view = new DataView(out.buffer);
  const values = data as ArrayLike<number>;
  switch (dtype) {
    case 'F64':
      for (let i = 0; i < n; i++) view.setFloat64(8 * i, values[i], true);
      break;
    case 'F32':
      for (let i = 0; i < n; i++) view.setFloat32(4 * i, values[i], true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) view.setUint16(2 * i, float32ToFloat16Bits(values[i]), true);
      break;
    case 'BF16':
      for (let i = 0; i < n; i++) view.setUint16(2 * i, float32ToBfloat16Bits(values[i]), true);
      break;
    case 'I32':
      for (let i = 0; i < n; i++) view.setInt32(4 * i, values[i], true);
      break;
    case 'I64':
      if (data instanceof BigInt64Array) for (let i = 0; i < n; i++) view.setBigInt64(8 * i, data[i], true);
      else for (let i = 0; i < n; i++) view.setBigInt64(8 * i, BigInt(values[i]), true);
      break;
    case 'U8':
      out.set(data as Uint8Array);
      break;
  }
  return out;
}
