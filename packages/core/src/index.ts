/**
 * @diff-transformer/core — the Differential Transformer (Ye et al., ICLR 2025) model graph, the tensor
 * handle and kernel contract that every backend implements, and the backend registry.
 */
export * from './errors.js';

// Tensors
export type { DType, HostArray } from './tensor/dtype.js';
export { bytesPerElement, isFloatDType } from './tensor/dtype.js';
export { Tensor } from './tensor/tensor.js';
export { tensor, zeros, type CreateOptions } from './tensor/create.js';
export { tidy, keep } from './tensor/scope.js';
export { memory, type MemoryStats } from './tensor/storage.js';
export { sizeOf, shapesEqual } from './tensor/shape.js';

// The kernel contract and the registry
export type * from './backend/kernels.js';
export { KERNEL_NAMES, INFERENCE_KERNEL_NAMES, TRAINING_KERNEL_NAMES } from './backend/kernels.js';
export { matmulDims, type MatmulDims } from './backend/matmul-dims.js';
export {
  registerBackend,
  registeredBackends,
  setBackend,
  ready,
  activeBackend,
  listBackends,
  initializedBackend,
  disposeBackend,
  type BackendFactory,
  type BackendInfo,
  type BackendRegistration,
} from './backend/registry.js';

// Validated entry points to the kernels
export * as ops from './ops/index.js';

// Gradients: a tape recorded only inside valueAndGrads, and the one table of every op's rule
export { valueAndGrads, type ValueAndGrads, type ValueAndGradsOptions } from './autograd/value-and-grads.js';
export { GRADIENTS } from './autograd/gradients.js';
export type {
  GradientTable,
  GradientRules,
  GradientRule,
  GradientContext,
  NoGradient,
  DifferentiableOp,
  DifferentiableOps,
  NonDifferentiableOp,
  OpName,
} from './autograd/gradient-table.js';

// The model
export {
  resolveConfig,
  lambdaInit,
  layerLambdaInit,
  defaultIntermediateSize,
  type ModelConfig,
  type ModelConfigInput,
  type AttentionKind,
  type LambdaParameterization,
} from './model/config.js';
export {
  parameterShapes,
  attentionParameterShapes,
  parameterCount,
  initParameters,
  validateParameters,
  ParameterError,
  type HostTensor,
  type InitOptions,
} from './model/parameters.js';
export { DiffTransformer, type ModelOptions, type ForwardOptions, type TokenIds } from './model/model.js';
export { DifferentialAttention, lambdaFull } from './model/attention/differential.js';
export { DifferentialAttentionV2 } from './model/attention/differential-v2.js';
export { StandardAttention } from './model/attention/standard.js';
export type { AttentionModule, AttentionContext, LayerCache, ParameterLookup } from './model/attention/module.js';
export { SwiGLUFeedForward } from './model/feed-forward.js';
export { DecoderBlock } from './model/block.js';
export { KVCache, type KVCacheOptions } from './model/kv-cache.js';
export {
  RotaryTables,
  rotaryTablesOnHost,
  type ForwardTables,
  type RotarySpec,
  type TableRows,
} from './model/rotary-tables.js';
export {
  ROPE_TYPES,
  dynamicRopeLength,
  isLengthDependent,
  resolveRopeScaling,
  ropeFrequencies,
  type RopeScaling,
  type RopeScalingInput,
  type RopeType,
} from './model/rope-scaling.js';
export {
  pickTokens,
  sampleFromProbabilities,
  validateSampling,
  isGreedy,
  type SamplingOptions,
} from './model/sampling.js';
export { generate, type GenerateOptions } from './model/generate.js';
export { createRandom, type Random } from './util/random.js';
export { errorStats } from './util/error-stats.js';

// Checkpoints: safetensors, model folders (native and Hugging Face DiffLlama), tokenizers.
// File access (fs) lives in '@diff-transformer/core/node'; everything here works over byte sources.
export {
  CheckpointError,
  SafetensorsHeaderError,
  TensorOffsetError,
  TensorByteSizeError,
  UnknownDTypeError,
  MissingTensorError,
  UnexpectedTensorError,
  TensorShapeMismatchError,
  CheckpointConfigError,
  UnsupportedCheckpointError,
  CheckpointIOError,
  NonFiniteTensorError,
} from './io/errors.js';
export { countNonFinite } from './io/non-finite.js';
export { float16BitsToFloat32, float32ToFloat16Bits } from './io/half.js';
export { memorySource, memoryFolder, type ByteSource, type FolderSource } from './io/byte-source.js';
export type { FolderFile } from './io/folder-file.js';
export {
  openSafetensors,
  serializeSafetensors,
  layoutSafetensors,
  isFloatSafetensorsDType,
  type SafetensorsDType,
  type SafetensorsFile,
  type SafetensorsTensorInfo,
  type SafetensorsArray,
  type SafetensorsEntry,
  type SafetensorsLayout,
} from './io/safetensors.js';
export {
  openTensorStore,
  SAFETENSORS_FILE,
  SAFETENSORS_INDEX_FILE,
  type TensorStore,
  type TensorStoreOptions,
  type TensorRole,
  type StoredTensor,
} from './io/tensor-store.js';
export {
  readModelFolder,
  describeModelFolder,
  loadModelFromFolder,
  nativeModelFiles,
  CONFIG_FILE,
  type LoadOptions,
  type ModelLayout,
  type ModelFolderContents,
  type ModelFolderDescription,
} from './io/model-folder.js';
export {
  diffLlamaDims,
  diffLlamaModelConfig,
  diffLlamaParameterShapes,
  diffLlamaHeadMap,
  fromDiffLlamaParameters,
  refuseDiffLlamaVariant,
  toDiffLlama,
  type DiffLlamaDims,
  type DiffLlamaConfigJson,
} from './io/diffllama.js';
export { ByteTokenizer, HuggingFaceTokenizer, type Tokenizer } from './io/tokenizer.js';
export {
  GENERATION_CONFIG_FILE,
  readGenerationDefaults,
  type GenerationDefaults,
} from './io/generation-config.js';
export {
  CHAT_TEMPLATE_FILE,
  TOKENIZER_CONFIG_FILE,
  applyChatTemplate,
  readChatTemplate,
  type ChatMessage,
  type ChatTemplate,
} from './io/chat-template.js';
