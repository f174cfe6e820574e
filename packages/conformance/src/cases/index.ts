import type { ConformanceCase } from '../types.js';
import { attentionCases } from './attention.js';
import { decodeCases } from './decode.js';
import { diffAttentionCases } from './diff-attention.js';
import { elementwiseCases } from './elementwise.js';
import { embeddingCases } from './embedding.js';
import { generateCases } from './generate.js';
import { logitsCases } from './logits.js';
import { matmulCases } from './matmul.js';
import { memoryCases } from './memory.js';
import { modelCases } from './model.js';
import { rmsNormCases } from './rms-norm.js';
import { rotaryCases } from './rotary.js';

let cases: readonly ConformanceCase[] | undefined;

/** Every case of the suite, kernels first, then the whole model; names are unique. */
export function conformanceCases(): ConformanceCase[] {
  cases ??= [
    ...matmulCases(),
    ...embeddingCases(),
    ...rmsNormCases(),
    ...rotaryCases(),
    ...elementwiseCases(),
    ...diffAttentionCases(),
    ...attentionCases(),
    ...logitsCases(),
    ...memoryCases(),
    ...modelCases(),
    ...decodeCases(),
    ...generateCases(),
  ];
  return [...cases];
}
