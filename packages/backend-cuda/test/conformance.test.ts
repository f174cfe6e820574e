import '@diff-transformer/backend-cuda';
import { describeConformance } from '@diff-transformer/conformance/vitest';
import { describe, it } from 'vitest';
import { cudaAvailable, skipReason } from './availability.js';

if (cudaAvailable) {
  describeConformance('cuda');
  describeConformance('cuda', { dtype: 'bfloat16' });
  describeConformance('cuda', { dtype: 'float16' });
} else {
  describe('conformance: cuda', () => {
    it.skip(`the shared suite (float32, bfloat16, float16): ${skipReason()}`, () => {});
  });
}
