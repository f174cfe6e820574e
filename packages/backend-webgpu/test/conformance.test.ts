import '@diff-transformer/backend-webgpu';
import { describeConformance } from '@diff-transformer/conformance/vitest';
describeConformance('webgpu');
