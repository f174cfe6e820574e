import { createCpuBackend } from '@diff-transformer/backend-cpu';
import { describeConformance } from '@diff-transformer/conformance/vitest';
import { registerBackend } from '@diff-transformer/core';

// cpu implements every kernel of the contract: an unsupported case is a failure (strict), and the
// large cases run too. Both engines that run in Node: the native one (which 'auto' picks here; the
// build compiles it, so a missing addon fails these cases with the loader's reason), on each
// instruction set this CPU runs (a cap above what it has gives the best it has), and WebAssembly.
registerBackend('cpu-native', () => createCpuBackend({ engine: 'native' }), 0);
registerBackend('cpu-native-avx2', () => createCpuBackend({ engine: 'native', isa: 'avx2' }), 0);
registerBackend('cpu-native-baseline', () => createCpuBackend({ engine: 'native', isa: 'baseline' }), 0);
registerBackend('cpu-wasm', () => createCpuBackend({ engine: 'wasm-simd128' }), 0);
describeConformance('cpu-native', { strict: true, large: true });
describeConformance('cpu-native-avx2', { strict: true, large: true });
describeConformance('cpu-native-baseline', { strict: true, large: true });
describeConformance('cpu-wasm', { strict: true, large: true });
