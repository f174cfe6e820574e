/** The kernel table of the CPU backend: every kernel of the contract, one file per family. */
export { matmul } from './matmul.js';
export { embedding } from './embedding.js';
export { rmsNorm } from './normalization.js';
export { rotary } from './rotary.js';
export { add, swiglu, sigmoid } from './elementwise.js';
export { attention } from './attention.js';
export { diffAttention } from './diff-attention.js';
export { softmax, argmax } from './logits.js';
export { narrow, cacheWrite } from './memory.js';
