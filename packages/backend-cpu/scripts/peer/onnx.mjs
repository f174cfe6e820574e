/**
 * Just enough of the ONNX format (onnx/onnx.proto, protobuf wire format) to write a model built in
 * code: a graph of nodes, float32 initializers and typed inputs and outputs. No dependency: the few
 * messages the peer benchmark needs are encoded by hand.
 */

const FLOAT = 1;
const INT64 = 7;
export const DTYPE = { float32: FLOAT, int64: INT64 };

/** A protobuf message as a list of encoded fields. */
class Message {
  parts = [];
  varint(field, value) {
    this.#key(field, 0);
    this.#varint(BigInt(value));
    return this;
  }
  float(field, value) {
    this.#key(field, 5);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.parts.push(bytes);
    return this;
  }
  bytes(field, value) {
    this.#key(field, 2);
    this.#varint(BigInt(value.length));
    this.parts.push(value);
    return this;
  }
  string(field, value) {
    return this.bytes(field, new TextEncoder().encode(value));
  }
  message(field, message) {
    return this.bytes(field, message.encode());
  }
  encode() {
    const length = this.parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(length);
    let at = 0;
    for (const part of this.parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }
  #key(field, wire) {
    this.#varint(BigInt((field << 3) | wire));
  }
  #varint(value) {
    // Negative int64 values are written as their two's complement, ten bytes.
    let v = value < 0n ? value + (1n << 64n) : value;
    const bytes = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      bytes.push(byte);
    } while (v !== 0n);
    this.parts.push(Uint8Array.from(bytes));
  }
}

/** AttributeProto: a float, an int, a list of ints or a string. */
function attribute(name, value) {
  const a = new Message().string(1, name);
  if (typeof value === 'string') return a.string(4, value).varint(20, 3);
  if (Array.isArray(value)) {
    for (const v of value) a.varint(8, v);
    return a.varint(20, 7);
  }
  if (Number.isInteger(value) && !Object.is(value, -0)) return a.varint(3, value).varint(20, 2);
  return a.float(2, value).varint(20, 1);
}

function valueInfo(name, dtype, shape) {
  const dims = new Message();
  for (const d of shape)
    dims.message(1, typeof d === 'string' ? new Message().string(2, d) : new Message().varint(1, d));
  const tensorType = new Message().varint(1, DTYPE[dtype]).message(2, dims);
  return new Message().string(1, name).message(2, new Message().message(1, tensorType));
}

/** A graph under construction: add nodes and initializers, then `encode` the model. */
export class Graph {
  nodes = [];
  initializers = [];
  inputs = [];
  outputs = [];
  #count = 0;

  /** A fresh value name. */
  name(prefix) {
    return `${prefix}_${this.#count++}`;
  }

  input(name, dtype, shape) {
    this.inputs.push(valueInfo(name, dtype, shape));
    return name;
  }

  output(name, dtype, shape) {
    this.outputs.push(valueInfo(name, dtype, shape));
    return name;
  }

  /** A float32 or int64 constant. */
  constant(name, dtype, shape, values) {
    const t = new Message();
    for (const d of shape) t.varint(1, d);
    t.varint(2, DTYPE[dtype]).string(8, name);
    const raw =
      dtype === 'float32'
        ? new Uint8Array(Float32Array.from(values).buffer)
        : new Uint8Array(BigInt64Array.from(values, (v) => BigInt(v)).buffer);
    t.bytes(9, raw);
    this.initializers.push(t);
    return name;
  }

  /** Adds a node; returns its output names (one unless `outputs` says more). */
  node(op, inputs, attributes = {}, { outputs = 1, domain = '' } = {}) {
    const names = Array.from({ length: outputs }, () => this.name(op.toLowerCase()));
    const n = new Message();
    for (const i of inputs) n.string(1, i);
    for (const o of names) n.string(2, o);
    n.string(3, this.name(`${op}_node`)).string(4, op);
    for (const [key, value] of Object.entries(attributes)) n.message(5, attribute(key, value));
    if (domain) n.string(7, domain);
    this.nodes.push(n);
    return outputs === 1 ? names[0] : names;
  }

  /** The ModelProto (IR version 10, opset 23 of ai.onnx and 1 of com.microsoft). */
  encode() {
    const graph = new Message();
    for (const n of this.nodes) graph.message(1, n);
    graph.string(2, 'peer');
    for (const t of this.initializers) graph.message(5, t);
    for (const i of this.inputs) graph.message(11, i);
    for (const o of this.outputs) graph.message(12, o);
    return new Message()
      .varint(1, 10)
      .string(2, 'diff-transformer peer benchmark')
      .message(7, graph)
      .message(8, new Message().string(1, '').varint(2, 23))
      .message(8, new Message().string(1, 'com.microsoft').varint(2, 1))
      .encode();
  }
}
