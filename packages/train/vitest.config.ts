import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Tests import the package by name, as users do; resolve it to the source so no build is needed.
    alias: [
      { find: /^@diff-transformer\/train$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
      {
        find: /^@diff-transformer\/train\/node$/,
        replacement: fileURLToPath(new URL('./src/node/index.ts', import.meta.url)),
      },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // Training runs real steps on the CPU backend; on a 2-core machine a file takes a while.
    testTimeout: 300_000,
    fileParallelism: false,
  },
});
