import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Most tests spawn `node dist/difftx.js`; on a 2-core CI machine, running the files one at a time
    // keeps each command's time predictable, and the generous timeout absorbs the other packages'
    // suites running beside this one.
    fileParallelism: false,
    testTimeout: 120_000,
  },
});
