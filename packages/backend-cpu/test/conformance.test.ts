import '@diff-transformer/backend-cpu';
import { INFERENCE_KERNEL_NAMES, TRAINING_KERNEL_NAMES } from '@diff-transformer/core';
import { describeConformance } from '@diff-transformer/conformance/vitest';

// cpu implements every inference kernel: there an unsupported case fails (strict), and the large cases
// run too. Its training kernels are being added; until they all are, theirs are reported apart.
const group = (names: readonly string[]) => new RegExp(`^(${names.join('|')})/`);
describeConformance('cpu', {
  filter: group([...INFERENCE_KERNEL_NAMES, 'model', 'decode', 'generate']),
  strict: true,
  large: true,
});
describeConformance('cpu', { filter: group([...TRAINING_KERNEL_NAMES, 'gradients']) });
