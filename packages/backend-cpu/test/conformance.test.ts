import '@diff-transformer/backend-cpu';
import { describeConformance } from '@diff-transformer/conformance/vitest';

// cpu implements every kernel of the contract: an unsupported case is a failure (strict), and the
// large cases run too.
describeConformance('cpu', { strict: true, large: true });
