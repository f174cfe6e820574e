import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The CLI runs whole suites in child processes; on a busy 2-core CI machine (the WebGPU tests run
    // on SwiftShader beside these) that takes far longer than vitest's 5 s default.
    testTimeout: 600_000,
  },
});
