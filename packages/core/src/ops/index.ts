export { matmul, linear } from './matmul.js';
export { embedding } from './embedding.js';
export { rmsNorm } from './normalization.js';
export { rotary, type RotaryOptions } from './rotary.js';
export { add, swiglu, sigmoid } from './elementwise.js';
export { diffAttention, attention, type AttentionOptions, type DiffAttentionOptions } from './attention.js';
export { softmax, argmax } from './logits.js';
export { narrow, cacheWrite } from './memory.js';
