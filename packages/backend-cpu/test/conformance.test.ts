import '@diff-transformer/backend-cpu';
import { describeConformance } from '@diff-transformer/conformance/vitest';

// cpu implements every kernel: an unsupported case is a failure, and the large cases run in CI too.
describeConformance('cpu', { strict: true, large: true });
