import type { ConformanceCase } from '../types.js';
import { attentionBackwardCases } from './attention-backward.js';
import { attentionCases } from './attention.js';
import { decodeCases } from './decode.js';
import { diffAttentionCases } from './diff-attention.js';
import { elementwiseCases } from './elementwise.js';
import { embeddingCases } from './embedding.js';
import { generateCases } from './generate.js';
import { gradientCases } from './gradients.js';
import { logitsCases } from './logits.js';
import { matmulCases } from './matmul.js';
import { memoryCases } from './memory.js';
import { modelCases } from './model.js';
import { opGradientCases } from './op-gradients.js';
import { rmsNormCases } from './rms-norm.js';
import { ropeScalingCases } from './rope-scaling.js';
import { rotaryCases } from './rotary.js';
import { trainingCases } from './training.js';

let cases: readonly ConformanceCase[] | undefined;

/** Every case of the suite: inference kernels, the whole model, then training (kernels, per-op gradients, whole-model gradients); names are unique. */
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
    ...ropeScalingCases(),
    ...generateCases(),
    ...trainingCases(),
    ...attentionBackwardCases(),
    ...opGradientCases(),
    ...gradientCases(),
  ];
  return [...cases];
}
