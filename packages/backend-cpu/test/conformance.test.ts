import '@diff-transformer/backend-cpu';
import { describeConformance } from '@diff-transformer/conformance/vitest';
describeConformance('cpu');
