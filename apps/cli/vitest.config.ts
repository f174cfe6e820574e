import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Most tests spawn `node dist/difftx.js`, which runs whole suites in child processes (WebGPU on
    // SwiftShader among them); on a 2-core CI machine, running the files one at a time keeps each
    // command's time predictable, and the generous timeout absorbs the other packages' suites.
    fileParallelism: false,
    testTimeout: 600_000,
  },
});
