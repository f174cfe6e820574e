/**
 * The float64 reference: every kernel of the contract and the whole model, written for clarity with
 * naive loops and full score matrices. It shares no code with any backend and does not use core's
 * model graph or ops; it only borrows core's types.
 */
export type { RefTensor } from './tensor.js';
export { refTensor, refZeros, elementCount } from './tensor.js';
export { centralDifferences, projection } from './finite-differences.js';
export { matmul, matmulBackward, linear } from './matmul.js';
export { embedding, embeddingBackward } from './embedding.js';
export { rmsNorm, rmsNormBackward } from './rms-norm.js';
export { rotary, rotaryBackward, rotaryTables } from './rotary.js';
export {
  dynamicForwardLengths,
  modelRotaryRows,
  scaledInverseFrequencies,
  scaledRotaryTables,
} from './rope-scaling.js';
export {
  swiglu,
  swigluBackward,
  add,
  sigmoid,
  sigmoidBackward,
  exp,
  expBackward,
  mul,
  mulBackward,
  scale,
  scaleBackward,
  sumSquares,
} from './elementwise.js';
export { diffAttention, attention, attentionProbabilities, attentionScores, kvGroup } from './attention.js';
export {
  attentionWithStatistics,
  attentionBackward,
  diffAttentionWithStatistics,
  diffAttentionBackward,
} from './attention-backward.js';
export { crossEntropy } from './loss.js';
export { adamw } from './optimizer.js';
export { softmax, argmax } from './logits.js';
export { narrow, narrowBackward, cacheWrite } from './memory.js';
export {
  modelLogits,
  greedyContinuation,
  referenceLambda,
  referenceLambdaInit,
  type AttentionObservation,
  type ModelLogitsOptions,
} from './model.js';
export {
  attentionMaps,
  type AttentionMapsResult,
  type HeadAttentionMaps,
  type LayerAttentionMaps,
} from './attention-maps.js';
export { modelLossGradients } from './model-gradients.js';
export { diffLlamaLogits, diffLlamaRotaryTables, type DiffLlamaReferenceConfig } from './diffllama.js';
