import '@diff-transformer/backend-webgpu';
import { describeConformance } from '@diff-transformer/conformance/vitest';

// webgpu implements every kernel: an unsupported case is a failure; the large cases reach its large
// matmul tiles, GEMV and split-key attention.
describeConformance('webgpu', { strict: true, large: true });
