import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Tests import the package by name, as users do; resolve it to the source so no build is needed.
    alias: [
      { find: /^@diff-transformer\/hub$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
      {
        find: /^@diff-transformer\/hub\/node$/,
        replacement: fileURLToPath(new URL('./src/node/index.ts', import.meta.url)),
      },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // The concurrency and browser tests start child processes and Chromium.
    testTimeout: 120_000,
    fileParallelism: false,
  },
});
