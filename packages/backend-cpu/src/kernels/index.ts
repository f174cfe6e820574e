/**
 * The TypeScript kernels: every kernel of the contract, one file per family, scalar code with
 * double-precision accumulation. Each reads its inputs as typed arrays (TensorViews whose storage
 * is a Float32Array or Int32Array) and writes every element of the output array it is given; the
 * engines decide where those arrays live (../engines).
 */
export { matmul } from './matmul.js';
export { embedding, embeddingBackward, occurrenceLists } from './embedding.js';
export { rmsNorm, rmsNormBackward } from './normalization.js';
export { rotary } from './rotary.js';
export { add, swiglu, sigmoid, exp, mul, scale, swigluBackward } from './elementwise.js';
export { attention } from './attention.js';
export { diffAttention } from './diff-attention.js';
export { attentionBackward } from './attention-backward.js';
export { diffAttentionBackward } from './diff-attention-backward.js';
export { sumSquares } from './reduction.js';
export { crossEntropy } from './loss.js';
export { adamw } from './optimizer.js';
export { softmax, argmax } from './logits.js';
export { narrow, cacheWrite } from './memory.js';
