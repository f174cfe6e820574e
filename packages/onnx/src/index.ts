/**
 * ONNX export of the Differential Transformer: the decoder as a graph of standard ONNX ops with its KV
 * cache as inputs and outputs (the layout ONNX Runtime's generation loop and Optimum use), its weights
 * in float32 or float16, external data past 2 GiB, and a genai_config.json. Browser-safe: it returns
 * files as byte chunks; writing them to disk is the caller's (difftx export, train's exportModel).
 */
export { checkGraph, STANDARD_OPS } from './check.js';
export {
  decoderGraph,
  decoderInterface,
  INPUT_NAMES,
  IR_VERSION,
  onnxProblems,
  OPSET,
  OUTPUT_NAMES,
  type DecoderGraphOptions,
  type DecoderInterface,
} from './decoder.js';
export { OnnxExportError } from './errors.js';
export {
  EXTERNAL_DATA_FILE,
  EXTERNAL_DATA_THRESHOLD,
  GENAI_CONFIG_FILE,
  MODEL_FILE,
  onnxExport,
  onnxGraph,
  onnxModelBytes,
  OPSETS,
  type OnnxExport,
  type OnnxExportOptions,
  type OnnxFile,
} from './files.js';
export { genaiConfig, type SpecialTokens } from './genai-config.js';
export {
  ELEMENT_BYTES,
  ELEMENT_TYPES,
  encodeModel,
  lazyBytes,
  OnnxGraph,
  type AttributeValue,
  type Dim,
  type ElementType,
  type EncodedModel,
  type Initializer,
  type ModelOptions,
  type Node,
  type OpsetImport,
  type ValueInfo,
} from './graph.js';
export { type Chunk, ProtoMessage } from './proto.js';
export { roundToFloat16, WEIGHT_DTYPES, type WeightDType } from './weights.js';
