import { describe, expect, it } from 'vitest';
import {
  CheckpointConfigError,
  CheckpointError,
  MissingTensorError,
  SafetensorsHeaderError,
  TensorByteSizeError,
  TensorOffsetError,
  UnexpectedTensorError,
  UnknownDTypeError,
  memoryFolder,
  memorySource,
  openSafetensors,
  openTensorStore,
  serializeSafetensors,
  type ByteSource,
  type TensorRole,
} from '../src/index.js';

/** A file from a header object and raw data bytes, with no checks (to build broken files). */
export function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), declaredLength?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

async function open(bytes: Uint8Array, name = 'test.safetensors') {
  return openSafetensors(memorySource(bytes, name));
}

async function failure(bytes: Uint8Array, name = 'bad.safetensors'): Promise<CheckpointError> {
  try {
    const file = await open(bytes, name);
    for (const t of file.tensors.keys()) await file.read(t);
  } catch (error) {
    expect(error).toBeInstanceOf(CheckpointError);
    return error as CheckpointError;
  }
  throw new Error('expected a CheckpointError');
}

describe('safetensors', () => {
  it('round-trips every dtype, the metadata, and aligns the data to 8 bytes', async () => {
    const bytes = serializeSafetensors(
      [
        ['f64', { shape: [2, 2], data: Float64Array.of(1 / 3, -2, 1e300, 0) }],
        ['f32', { shape: [3], data: Float32Array.of(1.5, -0.25, 3e38) }],
        ['f16', { shape: [4], data: Float32Array.of(1, -2.5, 65504, 2 ** -24), dtype: 'F16' }],
        ['bf16', { shape: [3], data: Float32Array.of(1, -3.5, 2 ** 100), dtype: 'BF16' }],
        ['i64', { shape: [2], data: BigInt64Array.of(-(2n ** 62n), 7n) }],
        ['i32', { shape: [2, 1], data: Int32Array.of(-5, 2 ** 31 - 1) }],
        ['u8', { shape: [3], data: Uint8Array.of(0, 128, 255) }],
        ['empty', { shape: [0, 4], data: new Float32Array(0) }],
      ],
      { format: 'pt', note: 'ünïcode' },
    );
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const file = await open(bytes);
    expect(file.metadata).toEqual({ format: 'pt', note: 'ünïcode' });
    expect([...file.tensors.keys()]).toEqual(['f64', 'f32', 'f16', 'bf16', 'i64', 'i32', 'u8', 'empty']);
    expect(file.tensors.get('f64')!.shape).toEqual([2, 2]);
    expect(values(await file.read('f64'))).toEqual([1 / 3, -2, 1e300, 0]);
    expect(values(await file.read('f32'))).toEqual([1.5, -0.25, Math.fround(3e38)]);
    const f16 = await file.read('f16');
    expect(f16).toBeInstanceOf(Float32Array); // half types widen to float32 on load
    expect(values(f16)).toEqual([1, -2.5, 65504, 2 ** -24]);
    expect(values(await file.read('bf16'))).toEqual([1, -3.5, 2 ** 100]);
    expect(values(await file.read('i64'))).toEqual([-(2n ** 62n), 7n]);
    expect(values(await file.read('i32'))).toEqual([-5, 2 ** 31 - 1]);
    expect(values(await file.read('u8'))).toEqual([0, 128, 255]);
    expect((await file.read('empty')).length).toBe(0);
    expect(Array.from(await file.readFloat32('f64'))).toEqual([Math.fround(1 / 3), -2, Infinity, 0]);
    expect(Array.from(await file.readFloat64('f16'))).toEqual([1, -2.5, 65504, 2 ** -24]);
    await expect(file.readFloat32('i32')).rejects.toThrow(/F64, F32, F16, BF16/);
    await expect(file.read('nope')).rejects.toThrow(/tensor 'nope': no such tensor/);
  });

  it('rounds to nearest even when narrowing to float16 and bfloat16', async () => {
    const inputs = Float32Array.of(1 + 2 ** -11, 1 + 3 * 2 ** -11, 70000, 1e-8, 1 + 2 ** -8, 1 + 3 * 2 ** -8);
    const file = await open(
      serializeSafetensors([
        ['h', { shape: [4], data: inputs.subarray(0, 4), dtype: 'F16' }],
        ['b', { shape: [2], data: inputs.subarray(4), dtype: 'BF16' }],
      ]),
    );
    expect(values(await file.read('h'))).toEqual([1, 1 + 2 * 2 ** -10, Infinity, 0]);
    expect(values(await file.read('b'))).toEqual([1, 1 + 2 * 2 ** -7]);
  });

  it('reads a tensor in pieces, never asking for more than a piece, also at unaligned offsets', async () => {
    const data = Float32Array.from({ length: 1001 }, (_, i) => i * 0.5 - 3);
    const bytes = serializeSafetensors([
      ['pad', { shape: [1], data: Uint8Array.of(9) }],
      ['x', { shape: [7, 143], data }],
    ]);
    const inner = memorySource(bytes, 'pieces.safetensors');
    const reads: number[] = [];
    const source: ByteSource = {
      ...inner,
      read: (offset, length) => {
        reads.push(length);
        return inner.read(offset, length);
      },
    };
    const file = await openSafetensors(source, { pieceBytes: 64 });
    reads.length = 0;
    expect(values(await file.read('x'))).toEqual(Array.from(data));
    expect(Math.max(...reads)).toBeLessThanOrEqual(64);
    expect(reads.length).toBe(Math.ceil(1001 / 16));
  });

  it('reads one tensor of a file larger than 2 GiB without reading the rest', async () => {
    // A virtual 3 GiB file: a big U8 tensor that is never read, then a small F32 tensor at the end.
    const big = 3 * 2 ** 30;
    const header = {
      big: { dtype: 'U8', shape: [big], data_offsets: [0, big] },
      tail: { dtype: 'F32', shape: [2], data_offsets: [big, big + 8] },
    };
    const head = rawFile(header);
    const tail = new Uint8Array(new Float32Array([1.25, -7]).buffer);
    const size = head.length + big + 8;
    const requested: Array<[number, number]> = [];
    const source: ByteSource = {
      name: 'huge.safetensors',
      size,
      async read(offset, length) {
        requested.push([offset, length]);
        if (offset < head.length) return head.subarray(offset, offset + length);
        if (offset === head.length + big && length === 8) return tail;
        throw new Error(`unexpected read at ${offset}`);
      },
    };
    const file = await openSafetensors(source);
    expect(file.tensors.get('big')!.size).toBe(big);
    expect(values(await file.read('tail'))).toEqual([1.25, -7]);
    expect(requested.every(([, length]) => length <= 64 * 2 ** 20)).toBe(true);
  });

  it('raises a typed error naming the file (and the tensor) for each kind of corruption', async () => {
    const data = new Uint8Array(16);
    const ok = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    };
    const cases: Array<[string, Uint8Array, new (...args: never[]) => CheckpointError, RegExp, string | null]> = [
      [
        'shorter than 8 bytes',
        new Uint8Array(5),
        SafetensorsHeaderError,
        /shorter than the 8-byte header length/,
        null,
      ],
      [
        'header length beyond the file',
        rawFile(ok, data, 10_000n),
        SafetensorsHeaderError,
        /runs past the end of the file/,
        null,
      ],
      [
        'header length of 2^64 - 1',
        rawFile(ok, data, 2n ** 64n - 1n),
        SafetensorsHeaderError,
        /runs past the end/,
        null,
      ],
      ['malformed JSON', rawFile('{"a": {', data), SafetensorsHeaderError, /not valid UTF-8 JSON/, null],
      [
        'invalid UTF-8',
        rawFile('{"\u00ff": 1}', data).map((b, i) => (i === 10 ? 0xff : b)),
        SafetensorsHeaderError,
        /UTF-8 JSON/,
        null,
      ],
      ['a JSON array', rawFile([1, 2], data), SafetensorsHeaderError, /must be a JSON object/, null],
      [
        'an entry without data_offsets',
        rawFile({ a: { dtype: 'F32', shape: [2] } }, data),
        SafetensorsHeaderError,
        /data_offsets must be two/,
        'a',
      ],
      [
        'a negative dimension',
        rawFile({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, data),
        SafetensorsHeaderError,
        /non-negative integers/,
        'a',
      ],
      [
        'non-string metadata',
        rawFile({ __metadata__: { n: 1 }, ...ok }, data),
        SafetensorsHeaderError,
        /__metadata__.n must be a string/,
        null,
      ],
      [
        'an unknown dtype',
        rawFile({ a: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, data),
        UnknownDTypeError,
        /unknown dtype "F8_E4M3"/,
        'a',
      ],
      [
        'offsets past the data',
        rawFile({ a: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, data),
        TensorOffsetError,
        /run past the 16 data bytes/,
        'a',
      ],
      [
        'offsets ending before they begin',
        rawFile({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, data),
        TensorOffsetError,
        /end before they begin/,
        'a',
      ],
      [
        'overlapping tensors',
        rawFile(
          {
            a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] },
            b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
          },
          data,
        ),
        TensorOffsetError,
        /overlap those of 'a'/,
        'b',
      ],
      [
        'a byte size not matching shape × dtype',
        rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data),
        TensorByteSizeError,
        /holds 8 bytes, but shape \[3\] of F32 needs 12/,
        'a',
      ],
      [
        'an element count overflowing',
        rawFile({ a: { dtype: 'F64', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, data),
        TensorByteSizeError,
        /needs/,
        'a',
      ],
    ];
    for (const [what, bytes, type, message, tensor] of cases) {
      const error = await failure(bytes, 'bad.safetensors');
      expect(error, what).toBeInstanceOf(type);
      expect(error.message, what).toMatch(message);
      expect(error.message, what).toMatch(/^bad\.safetensors/);
      expect(error.file, what).toBe('bad.safetensors');
      expect(error.tensor, what).toBe(tensor);
    }
  });

  it('refuses to write what it could not read back', () => {
    expect(() => serializeSafetensors([['a', { shape: [3], data: new Float32Array(2) }]])).toThrow(TensorByteSizeError);
    expect(() => serializeSafetensors([['a', { shape: [1], data: new Int32Array(1), dtype: 'F32' }]])).toThrow(
      /cannot write Int32Array data as F32/,
    );
    expect(() => serializeSafetensors([['__metadata__', { shape: [1], data: new Float32Array(1) }]])).toThrow(
      SafetensorsHeaderError,
    );
  });
});

describe('sharded checkpoints', () => {
  const shard = (names: string[], extra: string[] = []) =>
    serializeSafetensors(
      [...names, ...extra].map((n, i) => [n, { shape: [2], data: Float32Array.of(i, -i) }] as const),
    );
  const index = (map: Record<string, string>) =>
    new TextEncoder().encode(JSON.stringify({ metadata: { total_size: 0 }, weight_map: map }));

  it('finds every tensor through model.safetensors.index.json', async () => {
    const store = await openTensorStore(
      memoryFolder(
        {
          'model.safetensors.index.json': index({
            a: 'model-00001-of-00002.safetensors',
            b: 'model-00001-of-00002.safetensors',
            c: 'model-00002-of-00002.safetensors',
          }),
          'model-00001-of-00002.safetensors': shard(['a', 'b']),
          'model-00002-of-00002.safetensors': shard(['c']),
        },
        'm',
      ),
    );
    expect([...store.tensors.keys()].sort()).toEqual(['a', 'b', 'c']);
    expect(store.tensors.get('c')!.file.name).toBe('m/model-00002-of-00002.safetensors');
    expect(Array.from(await store.tensors.get('b')!.file.readFloat32('b'))).toEqual([1, -1]);
    await store.close();
  });

  it('names the shard and tensor when the index and the shards disagree', async () => {
    const files = (map: Record<string, string>, shards: Record<string, Uint8Array>) =>
      memoryFolder({ 'model.safetensors.index.json': index(map), ...shards }, 'm');
    await expect(
      openTensorStore(files({ a: 's1.safetensors', z: 's1.safetensors' }, { 's1.safetensors': shard(['a']) })),
    ).rejects.toThrow(MissingTensorError);
    await expect(
      openTensorStore(files({ a: 's1.safetensors' }, { 's1.safetensors': shard(['a'], ['stray']) })),
    ).rejects.toThrow(UnexpectedTensorError);
    await expect(openTensorStore(files({ a: 's2.safetensors' }, {}))).rejects.toThrow(
      /m\/s2.safetensors: tensor 'a': missing: model.safetensors.index.json lists it/,
    );
    // With the config's view, an entry no shard backs is missing only when the config needs it.
    const dangling = files({ a: 's1.safetensors', z: 's1.safetensors' }, { 's1.safetensors': shard(['a']) });
    const roleOf = (role: TensorRole) => (name: string) => (name === 'z' ? role : 'needed');
    await expect(openTensorStore(dangling, { roleOf: roleOf('unexpected') })).rejects.toThrow(
      /m\/model.safetensors.index.json: tensor 'z': unexpected: the model config has no parameter of that name/,
    );
    await expect(openTensorStore(dangling, { roleOf: roleOf('needed') })).rejects.toThrow(
      /s1.safetensors: tensor 'z': missing: the model config needs it/,
    );
    const store = await openTensorStore(dangling, { roleOf: roleOf('ignorable') });
    expect([...store.tensors.keys()]).toEqual(['a']);
    await store.close();
    await expect(openTensorStore(files({ a: '../s1.safetensors' }, {}))).rejects.toThrow(CheckpointConfigError);
    await expect(
      openTensorStore(memoryFolder({ 'model.safetensors.index.json': new TextEncoder().encode('{') }, 'm')),
    ).rejects.toThrow(/not valid JSON/);
    await expect(openTensorStore(memoryFolder({}, 'm'))).rejects.toThrow(/no model.safetensors/);
  });
});

/** Any typed array (including BigInt64Array) as a plain array, for toEqual. */
function values(a: unknown): unknown[] {
  return Array.from(a as ArrayLike<unknown>);
}
