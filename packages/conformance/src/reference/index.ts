/**
 * The float64 reference: every kernel of the contract and the whole model, written for clarity with
 * naive loops and full score matrices. It shares no code with any backend and does not use core's
 * model graph or ops; it only borrows core's types.
 */
export type { RefTensor } from './tensor.js';
export { refTensor, refZeros, elementCount } from './tensor.js';
export { matmul, linear } from './matmul.js';
export { embedding } from './embedding.js';
export { rmsNorm } from './rms-norm.js';
export { rotary, rotaryTables } from './rotary.js';
export { swiglu, add, sigmoid } from './elementwise.js';
export { diffAttention, attention, kvGroup } from './attention.js';
export { softmax, argmax } from './logits.js';
export { narrow, cacheWrite } from './memory.js';
export { modelLogits, greedyContinuation, referenceLambda, referenceLambdaInit } from './model.js';
export { diffLlamaLogits, diffLlamaRotaryTables, type DiffLlamaReferenceConfig } from './diffllama.js';
