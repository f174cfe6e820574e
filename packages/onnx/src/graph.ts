/**
 * An ONNX graph built in code: typed graph inputs and outputs, initializers (inline or in an external
 * data file), and nodes in the order they run. `encodeModel` writes the ModelProto (onnx/onnx.proto) as
 * chunks through ./proto.ts; `checkGraph` (./check.ts) reads the same structure before anything is written.
 */
import { type Chunk, type LazyChunk, ProtoMessage } from './proto.js';

/** Element types this project writes (TensorProto.DataType). */
export const ELEMENT_TYPES = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
} as const;
export type ElementType = keyof typeof ELEMENT_TYPES;

export const ELEMENT_BYTES: Record<ElementType, number> = {
  float32: 4,
  uint8: 1,
  int8: 1,
  int32: 4,
  int64: 8,
  bool: 1,
  float16: 2,
};

/** A dimension: a fixed size, or a symbolic name shared by every axis of that size (dynamic axes). */
export type Dim = number | string;

export interface ValueInfo {
  readonly name: string;
  readonly type: ElementType;
  readonly dims: readonly Dim[];
}

export interface Initializer {
  readonly name: string;
  readonly type: ElementType;
  readonly dims: readonly number[];
  /** Little-endian raw data, now or produced when written. */
  readonly data: Chunk;
}

/**
 * An attribute value: an integer, integers, a string, or a tagged float or tensor (a bare number is
 * an int, so an attribute's ONNX type never depends on whether its value happens to be whole).
 */
export type AttributeValue =
  | number
  | readonly number[]
  | string
  | { readonly float: number }
  | { readonly tensor: Initializer };

export interface Node {
  readonly op: string;
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  /** '' is the standard ai.onnx domain. */
  readonly domain: string;
}

export interface OpsetImport {
  readonly domain: string;
  readonly version: number;
}

export interface NodeOptions {
  /** How many outputs (default 1), or their names. */
  readonly outputs?: number | readonly string[];
  readonly domain?: string;
  /** A readable stem for the node and its outputs (e.g. 'layers.0.attn.q'). */
  readonly name?: string;
}

export class OnnxGraph {
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  readonly initializers: Initializer[] = [];
  readonly nodes: Node[] = [];
  readonly #names = new Set<string>();
  readonly #constants = new Map<string, string>();

  constructor(readonly name: string) {}

  input(name: string, type: ElementType, dims: readonly Dim[]): string {
    this.#claim(name);
    this.inputs.push({ name, type, dims });
    return name;
  }

  /** Declares `value` (a node output already named so) a graph output. */
  output(value: string, type: ElementType, dims: readonly Dim[]): string {
    this.outputs.push({ name: value, type, dims });
    return value;
  }

  initializer(name: string, type: ElementType, dims: readonly number[], data: Chunk): string {
    this.#claim(name);
    this.initializers.push({ name, type, dims, data });
    return name;
  }

  /** A small int64 constant, shared between nodes that use the same values. */
  int64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.#constant('int64', dims, values, () => new Uint8Array(BigInt64Array.from(values, BigInt).buffer));
  }

  /** A small float32 constant (a scalar when dims is []), shared like int64(). */
  float32(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.#constant('float32', dims, values, () => new Uint8Array(Float32Array.from(values).buffer));
  }

  /** Adds a node; returns its output name, or names when `outputs` asks for several. */
  node(
    op: string,
    inputs: readonly string[],
    attributes: Record<string, AttributeValue>,
    options: NodeOptions & { outputs: number | readonly string[] },
  ): string[];
  node(
    op: string,
    inputs: readonly string[],
    attributes?: Record<string, AttributeValue>,
    options?: Omit<NodeOptions, 'outputs'>,
  ): string;
  node(
    op: string,
    inputs: readonly string[],
    attributes: Record<string, AttributeValue> = {},
    options: NodeOptions = {},
  ): string | string[] {
    const stem = options.name ?? op.toLowerCase();
    const name = this.#fresh(`${stem}/${op}`);
    const wanted = options.outputs ?? 1;
    const outputs =
      typeof wanted === 'number'
        ? Array.from({ length: wanted }, (_, i) => this.#fresh(wanted === 1 ? stem : `${stem}.${i}`))
        : wanted.map((output) => {
            this.#claim(output);
            return output;
          });
    this.nodes.push({
      op,
      name,
      inputs: [...inputs],
      outputs,
      attributes: { ...attributes },
      domain: options.domain ?? '',
    });
    return options.outputs === undefined ? outputs[0] : outputs;
  }

  #constant(type: ElementType, dims: readonly number[], values: readonly number[], bytes: () => Uint8Array): string {
    const key = `${type}[${dims.join(',')}]:${values.join(',')}`;
    const known = this.#constants.get(key);
    if (known) return known;
    const name = this.#fresh(`const.${type}`);
    this.initializers.push({ name, type, dims, data: bytes() });
    this.#constants.set(key, name);
    return name;
  }

  /** A name not taken yet, from `stem` (stem itself when free, else stem_1, stem_2, …). */
  #fresh(stem: string): string {
    let name = stem;
    for (let i = 1; this.#names.has(name); i++) name = `${stem}_${i}`;
    this.#names.add(name);
    return name;
  }

  #claim(name: string): void {
    if (this.#names.has(name)) throw new RangeError(`ONNX graph: the name '${name}' is already used`);
    this.#names.add(name);
  }
}

export interface ModelOptions {
  readonly irVersion: number;
  readonly opsets: readonly OpsetImport[];
  readonly producerName: string;
  readonly producerVersion: string;
  readonly docString?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /**
   * Initializers to keep in a separate file beside the model (ONNX external data), e.g. past
   * protobuf's 2 GiB limit: the file name, and which tensors go there.
   */
  readonly externalData?: { readonly location: string; readonly include: (t: Initializer) => boolean };
}

export interface EncodedModel {
  /** The ModelProto. */
  readonly model: Chunk[];
  /** The external data file's contents (absent when every tensor is inline). */
  readonly externalData: Chunk[] | null;
}

/** Tensors in the external data file start at multiples of this (a page: ONNX Runtime maps them). */
const EXTERNAL_ALIGNMENT = 4096;

export function encodeModel(graph: OnnxGraph, options: ModelOptions): EncodedModel {
  const g = new ProtoMessage();
  for (const node of graph.nodes) g.message(GRAPH.node, encodeNode(node));
  g.string(GRAPH.name, graph.name);
  const external: Chunk[] = [];
  let offset = 0;
  for (const t of graph.initializers) {
    if (options.externalData?.include(t)) {
      const padding = (EXTERNAL_ALIGNMENT - (offset % EXTERNAL_ALIGNMENT)) % EXTERNAL_ALIGNMENT;
      if (padding) external.push(new Uint8Array(padding));
      offset += padding;
      g.message(GRAPH.initializer, encodeTensor(t, { location: options.externalData.location, offset }));
      external.push(t.data);
      offset += t.data.byteLength;
    } else {
      g.message(GRAPH.initializer, encodeTensor(t));
    }
  }
  for (const v of graph.inputs) g.message(GRAPH.input, encodeValueInfo(v));
  for (const v of graph.outputs) g.message(GRAPH.output, encodeValueInfo(v));

  const m = new ProtoMessage()
    .varint(MODEL.irVersion, options.irVersion)
    .string(MODEL.producerName, options.producerName)
    .string(MODEL.producerVersion, options.producerVersion);
  if (options.docString) m.string(MODEL.docString, options.docString);
  m.message(MODEL.graph, g);
  for (const opset of options.opsets) {
    m.message(MODEL.opsetImport, new ProtoMessage().string(1, opset.domain).varint(2, opset.version));
  }
  for (const [key, value] of Object.entries(options.metadata ?? {})) {
    m.message(MODEL.metadataProps, new ProtoMessage().string(1, key).string(2, value));
  }
  return { model: m.chunks(), externalData: options.externalData && external.length ? external : null };
}

// Field numbers of onnx/onnx.proto.
const MODEL = {
  irVersion: 1,
  producerName: 2,
  producerVersion: 3,
  docString: 6,
  graph: 7,
  opsetImport: 8,
  metadataProps: 14,
};
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12 };
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 };
const ATTRIBUTE = { name: 1, f: 2, i: 3, s: 4, t: 5, ints: 8, type: 20 };
const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, tensor: 4, ints: 7 };
const TENSOR = { dims: 1, dataType: 2, name: 8, rawData: 9, externalData: 13, dataLocation: 14 };
const DATA_LOCATION_EXTERNAL = 1;

function encodeNode(node: Node): ProtoMessage {
  const n = new ProtoMessage();
  for (const input of node.inputs) n.string(NODE.input, input);
  for (const output of node.outputs) n.string(NODE.output, output);
  n.string(NODE.name, node.name).string(NODE.opType, node.op);
  for (const [name, value] of Object.entries(node.attributes)) n.message(NODE.attribute, encodeAttribute(name, value));
  if (node.domain) n.string(NODE.domain, node.domain);
  return n;
}

function encodeAttribute(name: string, value: AttributeValue): ProtoMessage {
  const a = new ProtoMessage().string(ATTRIBUTE.name, name);
  if (typeof value === 'string') return a.string(ATTRIBUTE.s, value).varint(ATTRIBUTE.type, ATTRIBUTE_TYPE.string);
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new RangeError(`ONNX attribute ${name}: ${value} is not an integer`);
    return a.varint(ATTRIBUTE.i, value).varint(ATTRIBUTE.type, ATTRIBUTE_TYPE.int);
  }
  if (Array.isArray(value)) {
    for (const v of value) a.varint(ATTRIBUTE.ints, v);
    return a.varint(ATTRIBUTE.type, ATTRIBUTE_TYPE.ints);
  }
  if ('float' in value) return a.float(ATTRIBUTE.f, value.float).varint(ATTRIBUTE.type, ATTRIBUTE_TYPE.float);
  if ('tensor' in value) {
    return a.message(ATTRIBUTE.t, encodeTensor(value.tensor)).varint(ATTRIBUTE.type, ATTRIBUTE_TYPE.tensor);
  }
  throw new RangeError(`ONNX attribute ${name}: unsupported value`);
}

function encodeTensor(t: Initializer, external?: { location: string; offset: number }): ProtoMessage {
  const m = new ProtoMessage();
  for (const d of t.dims) m.varint(TENSOR.dims, d);
  m.varint(TENSOR.dataType, ELEMENT_TYPES[t.type]).string(TENSOR.name, t.name);
  if (!external) return m.bytes(TENSOR.rawData, t.data);
  const entry = (key: string, value: string) => new ProtoMessage().string(1, key).string(2, value);
  return m
    .message(TENSOR.externalData, entry('location', external.location))
    .message(TENSOR.externalData, entry('offset', String(external.offset)))
    .message(TENSOR.externalData, entry('length', String(t.data.byteLength)))
    .varint(TENSOR.dataLocation, DATA_LOCATION_EXTERNAL);
}

function encodeValueInfo(v: ValueInfo): ProtoMessage {
  const shape = new ProtoMessage();
  for (const d of v.dims) {
    shape.message(1, typeof d === 'string' ? new ProtoMessage().string(2, d) : new ProtoMessage().varint(1, d));
  }
  const tensorType = new ProtoMessage().varint(1, ELEMENT_TYPES[v.type]).message(2, shape);
  return new ProtoMessage().string(1, v.name).message(2, new ProtoMessage().message(1, tensorType));
}

/** A lazy chunk of `byteLength` bytes. */
export function lazyBytes(byteLength: number, produce: () => Uint8Array): LazyChunk {
  return { byteLength, produce };
}
