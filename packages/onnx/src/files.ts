/**
 * The files of an ONNX export: model.onnx (the decoder graph, ./decoder.ts), model.onnx.data when the
 * weights go past protobuf's 2 GiB limit (ONNX external data), and genai_config.json. Checked before
 * anything is written: what the graph cannot represent, float16 overflow, and the graph's structure.
 */
import type { HostTensor, ModelConfig } from '@diff-transformer/core';
import { checkGraph } from './check.js';
import { type DecoderInterface, decoderGraph, IR_VERSION, onnxProblems, OPSET } from './decoder.js';
import { OnnxExportError } from './errors.js';
import { genaiConfig, type SpecialTokens } from './genai-config.js';
import { encodeModel, type Initializer, type OnnxGraph } from './graph.js';
import { type Chunk, concatBytes, produceChunk } from './proto.js';
import type { WeightDType } from './weights.js';

export const MODEL_FILE = 'model.onnx';
export const EXTERNAL_DATA_FILE = 'model.onnx.data';
export const GENAI_CONFIG_FILE = 'genai_config.json';

/** Past this many bytes of weights the tensors go to the external data file (protobuf stops at 2 GiB). */
export const EXTERNAL_DATA_THRESHOLD = 2 ** 31 - 2 ** 26;
/** In an external-data export, tensors smaller than this stay inline (constants, norms). */
const INLINE_BELOW = 1024;

export interface OnnxExportOptions {
  /** Storage of the weight matrices (default float32; float16 halves the files, arithmetic stays float32). */
  readonly dtype?: WeightDType;
  /** The longest context the graph serves: rows of its rotary tables (default: the config's maxPositions). */
  readonly maxPositions?: number;
  /** Weights in model.onnx.data: 'auto' (default) when they pass 2 GiB, or always / never. */
  readonly externalData?: boolean | 'auto';
  /** For genai_config.json. */
  readonly tokens?: SpecialTokens;
  /** Recorded in the model's metadata (e.g. where it came from). */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** A file of the export: its name and its bytes, some produced only when written. */
export interface OnnxFile {
  readonly name: string;
  readonly chunks: ReadonlyArray<Uint8Array | (() => Uint8Array)>;
}

export interface OnnxExport {
  readonly files: OnnxFile[];
  readonly io: DecoderInterface;
  readonly externalData: boolean;
}

/** The export's files. Throws OnnxExportError naming everything that keeps this model from exporting. */
export function onnxExport(
  config: ModelConfig,
  parameters: ReadonlyMap<string, HostTensor>,
  options: OnnxExportOptions = {},
): OnnxExport {
  const dtype = options.dtype ?? 'float32';
  const problems = onnxProblems(config);
  const maxPositions = options.maxPositions ?? config.maxPositions;
  if (!Number.isInteger(maxPositions) || maxPositions < 1) {
    problems.push(`maxPositions ${maxPositions} (expected a positive integer)`);
  }
  if (dtype === 'float16') problems.push(...float16Problems(parameters));
  if (problems.length) throw new OnnxExportError(problems);

  const { graph, io } = decoderGraph(config, parameters, { dtype, maxPositions });
  const structural = checkGraph(graph, OPSETS);
  if (structural.length) throw new OnnxExportError(structural.map((p) => `graph check: ${p}`));
  const weightBytes = graph.initializers.reduce((n, t) => n + t.data.byteLength, 0);
  const external =
    options.externalData === 'auto' || options.externalData === undefined
      ? weightBytes > EXTERNAL_DATA_THRESHOLD
      : options.externalData;
  const encoded = encodeModel(graph, {
    ...modelOptions(config, dtype, options.metadata),
    externalData: external
      ? { location: EXTERNAL_DATA_FILE, include: (t: Initializer) => t.data.byteLength >= INLINE_BELOW }
      : undefined,
  });
  const files: OnnxFile[] = [{ name: MODEL_FILE, chunks: encoded.model.map(fileChunk) }];
  if (encoded.externalData) files.push({ name: EXTERNAL_DATA_FILE, chunks: encoded.externalData.map(fileChunk) });
  files.push({
    name: GENAI_CONFIG_FILE,
    chunks: [new TextEncoder().encode(`${JSON.stringify(genaiConfig(io, options.tokens, MODEL_FILE), null, 2)}\n`)],
  });
  return { files, io, externalData: encoded.externalData !== null };
}

/** The model as one buffer, weights inline: for sessions made from memory (tests, a browser). */
export function onnxModelBytes(
  config: ModelConfig,
  parameters: ReadonlyMap<string, HostTensor>,
  options: Omit<OnnxExportOptions, 'externalData' | 'tokens'> = {},
): Uint8Array {
  const { files } = onnxExport(config, parameters, { ...options, externalData: false });
  return concatBytes(files[0].chunks.map((c) => (typeof c === 'function' ? c() : c)));
}

/** The graph alone, checked (for tools that inspect or extend it). */
export function onnxGraph(
  config: ModelConfig,
  parameters: ReadonlyMap<string, HostTensor>,
  options: Pick<OnnxExportOptions, 'dtype' | 'maxPositions'> = {},
): { graph: OnnxGraph; io: DecoderInterface } {
  return decoderGraph(config, parameters, options);
}

export const OPSETS = [{ domain: '', version: OPSET }] as const;

function modelOptions(config: ModelConfig, dtype: WeightDType, metadata: Readonly<Record<string, string>> = {}) {
  return {
    irVersion: IR_VERSION,
    opsets: OPSETS,
    producerName: 'diff-transformer',
    producerVersion: '0.1',
    docString: `Differential Transformer decoder (${config.attention}), weights ${dtype}, with a KV cache.`,
    metadata: { attention: config.attention, weights: dtype, ...metadata },
  };
}

function fileChunk(chunk: Chunk): Uint8Array | (() => Uint8Array) {
  return chunk instanceof Uint8Array ? chunk : () => produceChunk(chunk);
}

/** Weight matrices with values past float16's range (they would be stored as ±∞). */
function float16Problems(parameters: ReadonlyMap<string, HostTensor>): string[] {
  const problems: string[] = [];
  for (const [name, p] of parameters) {
    if (p.shape.length !== 2) continue;
    let largest = 0;
    for (const v of p.data) if (Math.abs(v) > largest) largest = Math.abs(v);
    if (largest > 65504) problems.push(`${name} holds ${largest}, past float16's largest value 65504 (export float32)`);
  }
  return problems;
}
