export { matmul, linear } from './matmul.js';
export { embedding, embeddingBackward } from './embedding.js';
export { rmsNorm, rmsNormBackward } from './normalization.js';
export { rotary, type RotaryOptions } from './rotary.js';
export { add, swiglu, swigluBackward, sigmoid, exp, mul, scale } from './elementwise.js';
export {
  diffAttention,
  diffAttentionWithStatistics,
  diffAttentionBackward,
  attention,
  attentionWithStatistics,
  attentionBackward,
  type AttentionOptions,
  type DiffAttentionOptions,
  type AttentionStatisticsTensors,
} from './attention.js';
export { softmax, argmax } from './logits.js';
export { reshape, narrow, cacheWrite } from './memory.js';
export { crossEntropy, crossEntropyWithGradient, type CrossEntropyOptions } from './loss.js';
export { adamw } from './optimizer.js';
export { sumSquares } from './reduction.js';
