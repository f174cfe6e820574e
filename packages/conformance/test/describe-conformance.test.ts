/**
 * The vitest entry as a backend package uses it: register a backend, call describeConformance once.
 * The second call shows how an unsupported kernel appears: skipped with its reason, not failed; the
 * third, strict and with the large cases, what a backend that claims full coverage registers.
 */
import { registerBackend } from '@diff-transformer/core';
import { describeConformance } from '../src/vitest.js';
import { naiveBackend } from './naive-backend.js';

registerBackend('naive-vitest', () => naiveBackend('naive-vitest'));
registerBackend('naive-vitest-no-softmax', () => naiveBackend('naive-vitest-no-softmax', { omit: ['softmax'] }));

describeConformance('naive-vitest');
describeConformance('naive-vitest-no-softmax', { filter: /^softmax\// });
describeConformance('naive-vitest', { filter: /^matmul\/M(520|3 K70)/, strict: true, large: true });
