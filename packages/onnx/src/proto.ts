/**
 * The protobuf wire format, write side only, for ONNX's messages (onnx/onnx.proto is proto2): varints,
 * 32-bit floats and length-delimited fields. A message is a list of chunks whose lengths are known
 * before their bytes exist, so a tensor's raw data is produced only when the file is written and a
 * model of many gigabytes is never held twice. Hand-written rather than a library: protobufjs with
 * onnx.proto, or onnx-proto (protobufjs code generated from ONNX 1.8, unchanged since 2021), would
 * encode the whole model into one buffer (which stops at 2 GiB), for five wire rules written here.
 */

/** Bytes now, or a known number of bytes produced on demand (a large tensor's raw data). */
export type Chunk = Uint8Array | LazyChunk;

export interface LazyChunk {
  readonly byteLength: number;
  readonly produce: () => Uint8Array;
}

const WIRE_VARINT = 0;
const WIRE_FIXED32 = 5;
const WIRE_LENGTH_DELIMITED = 2;

/** A protobuf message under construction: fields in the order they are added. */
export class ProtoMessage {
  readonly #chunks: Chunk[] = [];
  #byteLength = 0;

  get byteLength(): number {
    return this.#byteLength;
  }

  /** An int32/int64/enum/bool field; negative values take ten bytes (two's complement), as protobuf says. */
  varint(field: number, value: number | bigint): this {
    this.#key(field, WIRE_VARINT);
    this.#push(encodeVarint(value));
    return this;
  }

  float(field: number, value: number): this {
    this.#key(field, WIRE_FIXED32);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.#push(bytes);
    return this;
  }

  bytes(field: number, value: Chunk): this {
    this.#key(field, WIRE_LENGTH_DELIMITED);
    this.#push(encodeVarint(value.byteLength));
    this.#push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** An embedded message: its chunks are appended, not copied. */
  message(field: number, message: ProtoMessage): this {
    this.#key(field, WIRE_LENGTH_DELIMITED);
    this.#push(encodeVarint(message.byteLength));
    for (const chunk of message.#chunks) this.#push(chunk);
    return this;
  }

  /** The encoded chunks; small neighbours are merged so a file is written in few large writes. */
  chunks(): Chunk[] {
    const out: Chunk[] = [];
    let pending: Uint8Array[] = [];
    const flush = () => {
      if (pending.length) out.push(concatBytes(pending));
      pending = [];
    };
    for (const chunk of this.#chunks) {
      if (chunk instanceof Uint8Array && chunk.byteLength < MERGE_BELOW) pending.push(chunk);
      else {
        flush();
        out.push(chunk);
      }
    }
    flush();
    return out;
  }

  /** The whole message in one buffer (for models small enough to hold in memory). */
  encode(): Uint8Array {
    return concatBytes(this.#chunks.map(produceChunk));
  }

  #key(field: number, wire: number): void {
    this.#push(encodeVarint(field * 8 + wire));
  }

  #push(chunk: Chunk): void {
    this.#chunks.push(chunk);
    this.#byteLength += chunk.byteLength;
  }
}

/** Chunks under this size are merged with their neighbours when a message is written out. */
const MERGE_BELOW = 1 << 16;

export function produceChunk(chunk: Chunk): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  const bytes = chunk.produce();
  if (bytes.byteLength !== chunk.byteLength) {
    throw new RangeError(`a lazy chunk produced ${bytes.byteLength} bytes, ${chunk.byteLength} were announced`);
  }
  return bytes;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

function encodeVarint(value: number | bigint): Uint8Array {
  let v = BigInt(value);
  if (v < 0n) v += 1n << 64n;
  const bytes: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v !== 0n);
  return Uint8Array.from(bytes);
}
