import '@diff-transformer/backend-webgpu';
import { INFERENCE_KERNEL_NAMES, TRAINING_KERNEL_NAMES } from '@diff-transformer/core';
import { describeConformance } from '@diff-transformer/conformance/vitest';

// webgpu implements every inference kernel: there an unsupported case fails (strict), and the large
// cases (large tiles, GEMV, split keys) run too. Its training kernels are being added; until they all
// are, theirs are reported apart.
const group = (names: readonly string[]) => new RegExp(`^(${names.join('|')})/`);
// SwiftShader (a CPU Vulkan) runs the sampling cases' dozens of decode steps in tens of seconds.
const timeout = 120_000;
describeConformance('webgpu', {
  filter: group([...INFERENCE_KERNEL_NAMES, 'model', 'decode', 'generate']),
  strict: true,
  large: true,
  timeout,
});
describeConformance('webgpu', { filter: group([...TRAINING_KERNEL_NAMES, 'opGradient', 'gradients']), timeout });
